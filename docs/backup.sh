#!/bin/sh
# A nightly EventVault backup: snapshot the vault, verify the package, keep its head hash
# somewhere the vault's writers cannot reach. Silent when all is well (cron mails only
# failures); any failure exits non-zero and appends nothing.
#
#   usage: EVENTVAULT_DB=URL backup.sh BACKUP_DIR HEADS_FILE
#
#   BACKUP_DIR  where the packages go, one a run, named by the time of the run
#   HEADS_FILE  one line a run is appended: time, package name, head hash. Keep it off the
#               vault's host (another machine, a write-once bucket): with it,
#               `eventvault verify --expect-head HASH` proves a vault or package is the
#               one you backed up, even against someone who rewrote the whole log.
#
#   crontab:  15 2 * * *  EVENTVAULT_DB=postgresql://backup@db/vault \
#                         /usr/local/bin/eventvault-backup.sh /srv/backups /mnt/offsite/heads
set -eu

backup_dir=$1
heads_file=$2
eventvault=${EVENTVAULT:-eventvault}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
package="$backup_dir/eventvault-$stamp.evpkg"
mkdir -p "$backup_dir"

# One JSON object on stdout; the head hash is read from it.
made=$("$eventvault" snapshot -o "$package" --json --quiet)
head=$(printf '%s\n' "$made" | sed -n 's/.*"head_hash":"\([0-9a-f]\{64\}\)".*/\1/p')
if [ -z "$head" ]; then
    echo "backup.sh: no head hash in the snapshot's answer: $made" >&2
    exit 1
fi

# Read the package back, end to end, and hold it to the head the snapshot reported.
"$eventvault" verify "$package" --expect-head "$head" --quiet

printf '%s %s %s\n' "$stamp" "$(basename "$package")" "$head" >> "$heads_file"
