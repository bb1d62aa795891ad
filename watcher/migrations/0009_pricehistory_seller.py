from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("watcher", "0008_task_catalogue_foreign_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="pricehistory",
            name="seller_name",
            field=models.CharField(blank=True, max_length=200, null=True, verbose_name="seller"),
        ),
        migrations.AddField(
            model_name="pricehistory",
            name="seller_id",
            field=models.CharField(blank=True, max_length=32, null=True, verbose_name="seller ID"),
        ),
    ]
