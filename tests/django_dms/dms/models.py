"""The seed's document-management models (seed-report.md): integer keys and foreign keys."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class WorkflowState(models.Model):
    name = models.CharField(max_length=50, unique=True)
    position = models.IntegerField()
    final = models.BooleanField(default=False)


class Document(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=20, default="draft")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="authored")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, null=True,
                                 related_name="reviewing")
    created_at = models.DateTimeField()
    due = models.DateField(null=True)
    pages = models.IntegerField(default=1)
    fee = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    signature = models.BinaryField(null=True)


class Workflow(models.Model):
    document = models.ForeignKey(Document, models.CASCADE)
    current_state = models.ForeignKey(WorkflowState, models.PROTECT)
    started_at = models.DateTimeField()
    note = models.TextField(blank=True)


class Placeholder(models.Model):
    key = models.CharField(max_length=60, unique=True)
    value = models.CharField(max_length=200)
    description = models.TextField(blank=True)


class BackupConfig(models.Model):
    name = models.CharField(max_length=60, unique=True)
    schedule = models.CharField(max_length=40)
    retention_days = models.IntegerField()
    enabled = models.BooleanField(default=True)
    max_size_gb = models.DecimalField(max_digits=8, decimal_places=3)
    weight = models.FloatField(default=1.0)


class BackupJob(models.Model):
    config = models.ForeignKey(BackupConfig, models.CASCADE)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True)
    succeeded = models.BooleanField(default=False)
    size_bytes = models.BigIntegerField(default=0)


class RestoreJob(models.Model):
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT)
    backup_job = models.ForeignKey(BackupJob, models.PROTECT)
    requested_at = models.DateTimeField()
    outcome = models.CharField(max_length=40, blank=True)
