"""The room runtime: actors with mailboxes, the supervisor that spawns and retires them,
room ids."""
