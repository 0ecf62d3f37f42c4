"""The data contract: database tables, migrations, and the messages passed between layers."""
