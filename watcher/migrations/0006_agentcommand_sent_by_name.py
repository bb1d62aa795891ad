from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Left


def fill_names(apps, schema_editor):
    """Commands sent before the field existed get their sender's current name."""
    command_model = apps.get_model("watcher", "AgentCommand")
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    # The name field of today's user model: historical models do not carry USERNAME_FIELD.
    name = get_user_model().USERNAME_FIELD
    names = user_model.objects.filter(pk=OuterRef("sent_by_id")).values(name)[:1]
    command_model.objects.filter(sent_by__isnull=False).update(
        sent_by_name=Left(Subquery(names), 150)
    )


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("watcher", "0005_task_catalogue_without_db_constraints"),
    ]

    operations = [
        migrations.AddField(
            model_name="agentcommand",
            name="sent_by_name",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                editable=False,
                max_length=150,
                verbose_name="sent by (name)",
            ),
        ),
        migrations.RunPython(fill_names, migrations.RunPython.noop, elidable=True),
    ]
