"""The built-in status page: a static page for operators and the admin-only data it draws."""
