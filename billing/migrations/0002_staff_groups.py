"""The Finance (edit) and Auditor (read-only) staff groups."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_groups(apps, schema_editor):
    # permissions are normally made after migrate; make them now so the groups get them
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    from billing.staff import staff_groups_sync

    staff_groups_sync(apps)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Finance", "Auditor"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("plans", "0002_immutable_versions"),
        ("wallets", "0002_currencies_and_immutable_ledger"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
