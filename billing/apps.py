from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(sender, app_config=None, using="default", **kwargs) -> None:
    # once per migrate, after the last app
    if app_config is None or app_config.label != "billing":
        return
    from django.apps import apps

    from billing.schedule import schedule_install_defaults
    from billing.staff import staff_groups_sync

    staff_groups_sync(apps)
    schedule_install_defaults(apps)


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        post_migrate.connect(_after_migrate, dispatch_uid="billing.after_migrate")
