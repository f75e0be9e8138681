"""The one set of test helpers; see tests/README.md for the list and the rules."""
