"""The story's commands: users, documents and workflows (conveniences over `entity`)."""

from __future__ import annotations

import click

from eventvault.cli.context import (
    Context,
    actor_options,
    parse_settings,
    pass_context,
    writing,
    written,
)


@click.group()
def user() -> None:
    """Create, change and delete users."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "author", "reviewer", "viewer"]),
              default="viewer", show_default=True)
@click.option("--email", default="")
@actor_options
@pass_context
def user_add(context: Context, username: str, role: str, email: str, actor: str,
             reason: str | None) -> None:
    """Add a user; prints its UUID."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.add_user(username, role, email)
    written(entity_id, commands)


@user.command("update")
@click.argument("ref")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE")
@actor_options
@pass_context
def user_update(context: Context, ref: str, settings: tuple[str, ...], actor: str,
                reason: str | None) -> None:
    """Change fields of a user (REF: username, UUID or user:USERNAME)."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.update_user(ref, parse_settings(settings))
    written(entity_id, commands)


@user.command("delete")
@click.argument("ref")
@actor_options
@pass_context
def user_delete(context: Context, ref: str, actor: str, reason: str | None) -> None:
    """Delete a user nothing refers to any more."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.delete_user(ref)
    written(entity_id, commands)


@click.group()
def document() -> None:
    """Create, change and delete documents."""


@document.command("add")
@click.argument("title")
@click.option("--author", required=True, metavar="USERNAME")
@click.option("--reviewer", metavar="USERNAME")
@actor_options
@pass_context
def document_add(context: Context, title: str, author: str, reviewer: str | None, actor: str,
                 reason: str | None) -> None:
    """Add a document; prints its UUID."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.add_document(title, author, reviewer)
    written(entity_id, commands)


@document.command("update")
@click.argument("ref")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE",
              help="title, status, author or reviewer (a username); repeatable.")
@click.option("--expect-version", type=int, help="Refuse if the document is not at this version.")
@actor_options
@pass_context
def document_update(context: Context, ref: str, settings: tuple[str, ...],
                    expect_version: int | None, actor: str, reason: str | None) -> None:
    """Change fields of a document (REF: its UUID)."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.update_document(ref, parse_settings(settings), expect_version)
    written(entity_id, commands)


@document.command("delete")
@click.argument("ref")
@actor_options
@pass_context
def document_delete(context: Context, ref: str, actor: str, reason: str | None) -> None:
    """Delete a document no workflow refers to."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.delete_document(ref)
    written(entity_id, commands)


@click.group()
def workflow() -> None:
    """Start workflows and move them between states."""


@workflow.command("start")
@click.argument("document_ref")
@click.option("--assignee", metavar="USERNAME")
@actor_options
@pass_context
def workflow_start(context: Context, document_ref: str, assignee: str | None, actor: str,
                   reason: str | None) -> None:
    """Start a workflow for a document, in the initial state; prints its UUID."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.start_workflow(document_ref, assignee)
    written(entity_id, commands)


@workflow.command("move")
@click.argument("ref")
@click.argument("state")
@click.option("--expect-version", type=int, help="Refuse if the workflow is not at this version.")
@actor_options
@pass_context
def workflow_move(context: Context, ref: str, state: str, expect_version: int | None, actor: str,
                  reason: str | None) -> None:
    """Move a workflow to STATE along an allowed transition."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.move_workflow(ref, state, expect_version)
    written(entity_id, commands)
