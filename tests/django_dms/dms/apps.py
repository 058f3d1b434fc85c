from django.apps import AppConfig


class DmsConfig(AppConfig):
    name = "dms"
    default_auto_field = "django.db.models.AutoField"
