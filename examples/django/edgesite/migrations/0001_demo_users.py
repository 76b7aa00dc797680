"""The demo accounts (alice / wonderland, an admin; bob / builder)."""
from django.contrib.auth.hashers import make_password
from django.db import migrations


def create_users(apps, schema_editor):
    User = apps.get_model("auth", "User")
    for username, password, first_name, staff in [("alice", "wonderland", "Alice", True), ("bob", "builder", "Bob", False)]:
        User.objects.update_or_create(
            username=username,
            defaults={"password": make_password(password), "first_name": first_name, "is_staff": staff, "is_active": True},
        )


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_users, migrations.RunPython.noop)]
