"""A writer process for the crash and concurrency harnesses (run as a script, not a test).

    python writer_process.py DB_URL NAME COUNT

Each round is one transaction of four events: a user NAME-i, a document by them, a workflow
for it, and a move of that workflow to in_review. A harness kills this process at random
moments and then checks that every round is in the vault entirely or not at all.
"""

from __future__ import annotations

import sys

from eventvault.vault import Vault


def main(url: str, name: str, count: int) -> None:
    vault = Vault(url)
    for round_number in range(count):
        username = f"{name}-{round_number}"
        with vault.write("admin", reason=f"round {round_number}") as commands:
            commands.add_user(username, "author")
            document = commands.add_document(f"{username} notes", username)
            workflow = commands.start_workflow(document, username)
            commands.move_workflow(workflow, "in_review")
        print(username, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
