"""The rules every installation starts with; operators edit or switch them off in admin."""

from decimal import Decimal

from django.db import migrations

DEFAULTS = (
    {"kind": "dumping", "name": "Демпинг 5 %", "threshold_pct": Decimal("5")},
    {"kind": "out_of_stock", "name": "Нет в наличии"},
    {"kind": "no_price_nights", "name": "Нет цены 2 ночи", "nights": 2},
)


def create_defaults(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    for values in DEFAULTS:
        if not AlertRule.objects.filter(kind=values["kind"]).exists():
            AlertRule.objects.create(**values)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
