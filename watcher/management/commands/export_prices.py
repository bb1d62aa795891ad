"""Export price history to a CSV or XLSX file, with the API's filters (none: every row)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from watcher.services import export
from watcher.services.prices import filter_prices

FILTERS = ("from", "to", "marketplace", "brand", "subscription", "competitor", "kind")


class Command(BaseCommand):
    help = (
        "Export price history to a file (streamed: memory stays flat). Without filters every "
        "row is exported; the filters are the API's (/api/v1/prices/)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=export.FORMATS, default=export.CSV)
        parser.add_argument(
            "--dialect",
            choices=export.DIALECTS,
            default=export.EXCEL,
            help="CSV: excel (BOM, ';', decimal comma; the default) or rfc4180.",
        )
        parser.add_argument("-o", "--output", required=True, help="The file to write.")
        parser.add_argument(
            "--language", default=settings.LANGUAGE_CODE, help="Language of the column headers."
        )
        parser.add_argument("--from", dest="from", help="First local date, YYYY-MM-DD.")
        parser.add_argument("--to", dest="to", help="Last local date, YYYY-MM-DD (included).")
        parser.add_argument("--marketplace")
        parser.add_argument("--brand")
        parser.add_argument("--subscription", help="Our SKU's id.")
        parser.add_argument("--competitor", help="A competitor's id.")
        parser.add_argument("--kind", help="own or competitor.")

    def handle(self, *args: Any, **options: Any) -> None:
        data = {name: options[name] for name in FILTERS if options[name] is not None}
        filterset = filter_prices(data)
        if not filterset.is_valid():
            errors = "; ".join(f"--{k}: {' '.join(v)}" for k, v in filterset.errors.items())
            raise CommandError(errors)
        with translation.override(options["language"]), open(options["output"], "wb") as out:
            export.write_file(filterset.qs, options["format"], out, options["dialect"])
        self.stdout.write(f"written {options['output']}")
