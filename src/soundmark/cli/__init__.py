"""The soundmark command line: one module per command."""
