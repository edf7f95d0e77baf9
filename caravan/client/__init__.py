"""The `caravan` command-line client: every command talks to the Cluster API over HTTP."""
