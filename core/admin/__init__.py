"""The admin toolkit every app's back-office pages use: formatting of amounts and times,
links between pages, changelist tools for large tables, read-only pages and forms whose saves
call a service."""
