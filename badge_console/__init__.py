"""badge-console: operator's console for badges that PostgreSQL itself awards."""

__version__ = "0.1.0"
