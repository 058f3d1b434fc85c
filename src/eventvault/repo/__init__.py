"""Package repositories: packages and their metadata in a directory or on S3-compatible storage.

`store` is the storage interface and `location` opens one from a LOCATION string; `directory`
and `s3` are its two backends; `repository` keeps packages, chains and keys on a store;
`retention` decides what `repo forget` removes; `check` verifies a repository.
"""
