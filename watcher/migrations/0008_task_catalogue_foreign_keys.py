import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("watcher", "0007_delete_orphaned_tasks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="task",
            name="competitor",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="tasks",
                to="watcher.competitor",
                verbose_name="competitor",
            ),
        ),
        migrations.AlterField(
            model_name="task",
            name="subscription",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="tasks",
                to="watcher.subscription",
                verbose_name="our SKU",
            ),
        ),
    ]
