from django.db import migrations
from django.db.models import Exists, OuterRef, Q


def delete_orphaned_tasks(apps, schema_editor):
    """Tasks whose subscription or competitor is gone: deleting the row would have deleted them,
    and the foreign keys of the next migration refuse them."""
    task_model = apps.get_model("watcher", "Task")
    subscriptions = apps.get_model("watcher", "Subscription").objects
    competitors = apps.get_model("watcher", "Competitor").objects
    task_model.objects.filter(
        ~Exists(subscriptions.filter(pk=OuterRef("subscription_id")))
        | (
            Q(competitor_id__isnull=False)
            & ~Exists(competitors.filter(pk=OuterRef("competitor_id")))
        )
    ).delete()


class Migration(migrations.Migration):
    # The foreign keys come in a migration of their own: PostgreSQL refuses to ALTER a table
    # in the transaction that deleted its rows (pending trigger events).
    dependencies = [
        ("watcher", "0006_agentcommand_sent_by_name"),
    ]

    operations = [
        migrations.RunPython(delete_orphaned_tasks, migrations.RunPython.noop, elidable=True),
    ]
