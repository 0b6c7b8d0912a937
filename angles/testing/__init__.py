"""Test tools for angles and for authors of angles plugins.

Installed as the pytest plugin ``angles.testing.plugin``: it provides a fresh plugin
manager, a way to register a plugin for one test, a way to run a pipeline written as YAML
text, a PostgreSQL database, and servers on 127.0.0.1 that behave like Supabase
(PostgREST), Notion, GitHub, a Slack incoming webhook and a mail server.

Nothing here is imported by angles at run time.
"""
