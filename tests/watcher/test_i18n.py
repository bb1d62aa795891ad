"""The interface speaks Russian by default and English on request; the catalog is complete.

The catalog checks read ``locale/ru/LC_MESSAGES/django.po`` with the standard library (no
gettext tools needed) and check that the committed ``django.mo`` matches it.
"""

from __future__ import annotations

import ast
import datetime as dt
import gettext
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from parser.types import Marketplace
from tests.factories import (
    AgentFactory,
    CompetitorFactory,
    PriceHistoryFactory,
    SubscriptionFactory,
    TaskFactory,
)
from watcher.services import agents

PO_FILE = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES" / "django.po"
MO_FILE = PO_FILE.with_suffix(".mo")
RU_PLURAL_FORMS = (
    "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
    "(n%100<10 || n%100>=20) ? 1 : 2);"
)


@pytest.fixture(autouse=True)
def default_language() -> Iterator[None]:
    """Requests activate a language in this thread; leave it as the other tests expect."""
    yield
    translation.deactivate()


@pytest.fixture
def superuser_client(db: None) -> Client:
    user = User.objects.create_superuser("i18n-admin", "admin@example.com", "x")
    client = Client()
    client.force_login(user)
    return client


# --- Pages --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_index_is_russian_by_default(superuser_client: Client) -> None:
    html = superuser_client.get("/admin/").content.decode()
    assert '<html lang="ru"' in html
    for text in ("Подписки", "Конкуренты", "История цен", "Агенты онлайн", "Парсер"):
        assert text in html, text
    assert "Price history" not in html


@pytest.mark.django_db
def test_the_admin_index_is_english_with_accept_language(superuser_client: Client) -> None:
    html = superuser_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en"' in html
    for text in ("Subscriptions", "Competitors", "Price history", "Live agents"):
        assert text in html, text
    assert "История цен" not in html


@pytest.mark.django_db
def test_the_language_cookie_switches_to_english(superuser_client: Client) -> None:
    superuser_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = superuser_client.get("/admin/watcher/task/").content.decode()
    assert "Generate tonight&#x27;s tasks now" in html or "Generate tonight's tasks now" in html
    assert "Сформировать задачи на ночь" not in html


@pytest.mark.django_db
def test_the_task_list_is_russian_by_default(superuser_client: Client) -> None:
    html = superuser_client.get("/admin/watcher/task/").content.decode()
    assert "Сформировать задачи на ночь" in html
    assert "Вернуть в очередь" in html  # an action's description


@pytest.mark.django_db
def test_the_admin_screens_speak_russian(superuser_client: Client) -> None:
    """Columns, actions, action messages and import errors of every screen are translated."""
    subscription = SubscriptionFactory(marketplace=Marketplace.OZON)
    CompetitorFactory(subscription=subscription)
    AgentFactory()
    pending = TaskFactory(subscription=subscription)
    PriceHistoryFactory()
    pages = {
        "subscription": ["Маркетплейс", "Артикул", "Конкуренты", "Включить выбранные подписки"],
        "competitor": ["Артикул конкурента", "Наш артикул", "Отключить выбранных конкурентов"],
        "agent": ["С последней связи", "Перевыпустить API-ключ", "Отключить выбранных агентов"],
        "task": ["Конкурент", "Статус", "Вернуть в очередь", "Перепарсить сохранённые отчёты"],
        "pricehistory": ["Маркетплейс", "Конкурент"],
    }
    for model, texts in pages.items():
        html = superuser_client.get(f"/admin/watcher/{model}/").content.decode()
        for text in texts:
            assert text in html, (model, text)

    subscriptions = [subscription, SubscriptionFactory()]
    response = superuser_client.post(
        "/admin/watcher/subscription/",
        {"action": "deactivate", ACTION_CHECKBOX_NAME: [str(s.pk) for s in subscriptions]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == ["2 подписки отключены."]

    response = superuser_client.post(
        "/admin/watcher/task/",
        {"action": "requeue", ACTION_CHECKBOX_NAME: [str(pending.pk)]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "0 задач возвращено в очередь. 1 задача пропущена: её статус этого не допускает."
    ]

    upload = SimpleUploadedFile("data.csv", b"brand,marketplace,sku\nNordic,aliexpress,1\n")
    html = superuser_client.post(
        "/admin/watcher/subscription/import/",
        {"format": "0", "import_file": upload, "resource": "0"},
    ).content.decode()
    assert "Неизвестный маркетплейс «aliexpress»" in html


@pytest.mark.django_db(transaction=True)
def test_a_live_page_is_russian_by_default_and_english_on_request(
    superuser_client: Client, make_agent
) -> None:
    handle = make_agent("bot-i18n")
    agents.enter_panic(handle.agent, "captcha", {}, "10.5.5.5")

    html = superuser_client.get("/live/agents/").content.decode()
    assert '<html lang="ru"' in html
    for text in ("Агенты онлайн", "Последняя связь", "Оператор модема", "Паника", "Подключение…"):
        assert text in html, text

    html = superuser_client.get("/live/agents/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en"' in html
    for text in ("Live agents", "Last heartbeat", "Modem operator", "Panic", "Connecting…"):
        assert text in html, text
    assert "Агенты онлайн" not in html


# --- The catalog --------------------------------------------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int | None, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0


_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?) (".*")$')


def read_po(path: Path) -> list[Entry]:
    """The entries of a PO file (obsolete ``#~`` entries are skipped)."""
    entries: list[Entry] = []
    current: Entry | None = None
    target: tuple[str, int | None] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            if not line and current is not None:
                entries.append(current)
                current, target = None, None
            continue
        if current is None:
            current = Entry(line=number)
        if line.startswith("#,"):
            current.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif match := _KEYWORD.match(line):
            keyword, index, text = match.group(1), match.group(2), ast.literal_eval(match.group(3))
            if keyword.startswith("msgstr"):
                target = ("msgstr", int(index) if index is not None else None)
                current.msgstr[target[1]] = text
            else:
                target = (keyword, None)
                setattr(current, keyword, text)
        elif line.startswith('"') and target is not None:
            text = ast.literal_eval(line)
            if target[0] == "msgstr":
                current.msgstr[target[1]] += text
            else:
                setattr(current, target[0], getattr(current, target[0]) + text)
        else:
            raise AssertionError(f"{path}:{number}: unexpected line {raw!r}")
    if current is not None:
        entries.append(current)
    return entries


def placeholders(text: str) -> list[str]:
    """Python-format placeholders (``%(name)s``, ``%d``…), sorted; ``%%`` is not one."""
    return sorted(re.findall(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr]", text.replace("%%", "")))


@pytest.fixture(scope="module")
def catalog() -> tuple[Entry, list[Entry]]:
    header, *entries = read_po(PO_FILE)
    assert header.msgid == ""
    return header, entries


def test_the_catalog_header_is_russian_with_three_plural_forms(catalog) -> None:
    header, _entries = catalog
    meta = header.msgstr[None]
    assert "Language: ru\n" in meta
    assert f"Plural-Forms: {RU_PLURAL_FORMS}\n" in meta
    assert "charset=UTF-8" in meta
    assert "fuzzy" not in header.flags


def test_every_message_is_translated_and_none_is_fuzzy(catalog) -> None:
    _header, entries = catalog
    assert len(entries) > 100
    problems = []
    for entry in entries:
        where = f"line {entry.line}: {entry.msgid!r}"
        if "fuzzy" in entry.flags:
            problems.append(f"{where} is fuzzy")
        expected = [0, 1, 2] if entry.msgid_plural is not None else [None]
        if sorted(entry.msgstr, key=lambda k: -1 if k is None else k) != expected:
            problems.append(f"{where} has forms {sorted(map(str, entry.msgstr))}")
            continue
        for form, text in entry.msgstr.items():
            if not text.strip():
                problems.append(f"{where} has an empty translation (form {form})")
            elif "python-format" in entry.flags:
                source = entry.msgid if form in (None, 0) else entry.msgid_plural
                if placeholders(text) != placeholders(source or ""):
                    problems.append(f"{where}: placeholders differ in form {form}: {text!r}")
    assert not problems, "\n".join(problems)


def test_the_compiled_catalog_matches_the_po_file(catalog) -> None:
    """``django.mo`` is committed (no gettext tools needed to run): it must not be stale."""
    _header, entries = catalog
    assert MO_FILE.exists(), "run `make messages` and commit locale/ru/LC_MESSAGES/django.mo"
    with MO_FILE.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for entry in entries:
        if entry.msgctxt is not None:
            continue
        if entry.msgid_plural is None:
            if compiled.gettext(entry.msgid) != entry.msgstr[None]:
                stale.append(entry.msgid)
        else:
            for n, form in ((1, 0), (3, 1), (5, 2)):
                if compiled.ngettext(entry.msgid, entry.msgid_plural, n) != entry.msgstr[form]:
                    stale.append(f"{entry.msgid} [n={n}]")
    assert not stale, "django.mo is stale; run `make messages`:\n" + "\n".join(stale)


def test_russian_plurals_use_the_right_form() -> None:
    with translation.override("ru"):
        forms = [
            translation.ngettext("%d task cancelled.", "%d tasks cancelled.", n) % n
            for n in (1, 3, 5, 11, 21, 22, 25)
        ]
    assert forms == [
        "1 задача отменена.",
        "3 задачи отменены.",
        "5 задач отменено.",
        "11 задач отменено.",
        "21 задача отменена.",
        "22 задачи отменены.",
        "25 задач отменено.",
    ]


# --- Grammar: every page of our apps, read as a Russian speaker would ---------------------------

# Apps whose admin pages we own; the sweep covers every model they register, so new screens
# are checked without editing this test.
OUR_APPS = ("watcher", "parser", "alerts", "office")
# ... and django-celery-beat's, registered again with our grammar (watcher.admin_beat).
GRAMMAR_APPS = (*OUR_APPS, "django_celery_beat")
ANIMATE = ("агент", "конкурент", "получател")  # accusative ≠ nominative for these masculine nouns
VERBS = r"(?:Выберите|Добавить|Изменить|Просмотреть|Удалить|удалить|Добавить ещё один)"
MONTHS = "Январь|Февраль|Март|Апрель|Май|Июнь|Июль|Август|Сентябрь|Октябрь|Ноябрь|Декабрь"
# Phrases Django would build around a nominative name; none may appear on our pages.
WRONG_PHRASES = [
    # «Подписка "…" был успешно добавлен» (a quote, then a masculine past participle)
    re.compile(r"[»“\"] был[аои]? (?:успешно )?(?:добавлен|изменен|удален)"),
    re.compile(r"с таким(?:и)? [А-ЯЁ]"),  # «Агент с таким Название уже существует»
    re.compile(rf"\b\d{{1,2}} (?:{MONTHS})\b"),  # «2 Декабрь» in date navigation
    re.compile(r"Удалить выбранные (?:агенты|конкуренты)"),
    re.compile(r"пропущено \w+и\b"),  # «… пропущено подписки»
    # The neutral fallback for a model without a grammar («Выберите для изменения: интервал»,
    # «Добавить: ключ модуля»): every screen of ours and of celery-beat has its grammar.
    re.compile(r"(?:Выберите для (?:изменения|просмотра)|Добавить|Изменить|Просмотр): \w"),
    re.compile(r"Удалить выбранное: "),
]


def ru_plural_form(n: int) -> int:
    """0 one (1, 21), 1 few (2–4, 22–24), 2 many (5–20, 25…): the catalog's Plural-Forms."""
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return 1
    return 2


def page_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    # Block elements end a phrase: «Задания парсинга: 1» and the next line do not run together.
    html = re.sub(
        r"</?(?:p|li|ul|td|th|tr|div|h\d|option|br|dt|dd|fieldset|input)\b[^>]*>", " ¦ ", html
    )
    text = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", unescape(text))


def grammar_problems(text: str, names: list[tuple[str, str]]) -> list[str]:
    """Known wrong patterns in a page's text; ``names`` are (singular, plural) nominatives."""
    problems = [m.group(0) for rx in WRONG_PHRASES for m in rx.finditer(text)]
    for singular, plural in names:
        first = singular.split()[0].lower()
        if first.endswith(("а", "я")) or first.startswith(ANIMATE):
            # «Выберите задача», «Добавить подписка», «Изменить конкурент»
            rx = re.compile(rf"{VERBS} {re.escape(singular)}(?![а-яё])", re.IGNORECASE)
            problems += [m.group(0) for m in rx.finditer(text)]
        # «21 задачи», «6 подписки», «5 конкуренты»: a nominative plural after a number is
        # right only for 2–4 of a noun whose genitive singular looks the same (задачи). (A
        # library's name with one form for both numbers, celery-beat's 'clocked', is no clue.)
        if plural == singular:
            continue
        for m in re.finditer(rf"\b(\d+) {re.escape(plural)}(?![а-яё])", text, re.IGNORECASE):
            if ru_plural_form(int(m.group(1))) != 1 or first.startswith(ANIMATE):
                problems.append(m.group(0))
    return problems


def test_the_grammar_check_catches_what_django_writes_by_itself() -> None:
    names = [("задача", "задачи"), ("подписка", "подписки"), ("агент", "агенты")]
    for wrong in (
        "Выберите задача для изменения",
        "Добавить подписка",
        "21 задачи",
        "6 подписки",
        "Подписка «x» был успешно добавлен.",
        "Агент с таким Название уже существует.",
        "2 Декабрь",
        "Удалить выбранные агенты",
        "Изменить агент",
    ):
        assert grammar_problems(wrong, names), wrong
    for right in ("Выберите задачу для изменения", "Добавить подписку", "21 задача", "3 задачи"):
        assert not grammar_problems(right, names), right


def our_admins() -> list[tuple[type, admin.ModelAdmin]]:
    found = []
    for label in GRAMMAR_APPS:
        if not apps.is_installed(label):
            continue
        for model in apps.get_app_config(label).get_models():
            if admin.site.is_registered(model):
                found.append((model, admin.site.get_model_admin(model)))
    return found


def make_rows() -> None:
    """A night's worth of rows, so lists show counts (21 tasks, 6 subscriptions) and dates."""
    import tests.factories as factories

    subscriptions = SubscriptionFactory.create_batch(6)
    CompetitorFactory.create_batch(5, subscription=subscriptions[0])
    for subscription in subscriptions:
        TaskFactory(subscription=subscription)
    make_beat_rows()
    for model, _model_admin in our_admins():
        factory = getattr(factories, f"{model.__name__}Factory", None)
        if factory is not None and not model.objects.exists():
            factory()


def make_beat_rows() -> None:
    """One row of each celery-beat schedule and a periodic task (migrate may have made some)."""
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    every, _created = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    CrontabSchedule.objects.get_or_create(minute="30", hour="20")
    SolarSchedule.objects.get_or_create(event="sunrise", latitude=55.75, longitude=37.62)
    ClockedSchedule.objects.get_or_create(
        clocked_time=dt.datetime(2026, 12, 2, 20, 30, tzinfo=dt.UTC)
    )
    PeriodicTask.objects.get_or_create(
        name="grammar-check", defaults={"task": "watcher.generate_tasks", "interval": every}
    )


@pytest.mark.django_db
def test_every_admin_page_of_our_apps_reads_right_in_russian(superuser_client: Client) -> None:
    make_rows()
    names = []
    for model, _model_admin in our_admins():
        with translation.override("ru"):
            names.append((str(model._meta.verbose_name), str(model._meta.verbose_name_plural)))
    problems = []
    checked = 0
    for model, model_admin in our_admins():
        opts = model._meta
        urls = [reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")]
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        obj = model.objects.first()
        if obj is not None:
            for view in ("change", "delete", "history"):
                urls.append(
                    reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])
                )
        hierarchy = model_admin.date_hierarchy
        dated = model.objects.exclude(**{hierarchy: None}).first() if hierarchy else None
        if dated is not None:
            day = getattr(dated, hierarchy)
            urls.append(urls[0] + f"?{hierarchy}__year={day.year}&{hierarchy}__month={day.month}")
        for url in urls:
            response = superuser_client.get(url, follow=True)
            if response.status_code == 403:
                continue  # a screen without that page (read-only rows)
            assert response.status_code == 200, url
            checked += 1
            problems += [
                f"{url}: {p}" for p in grammar_problems(page_text(response.content.decode()), names)
            ]
    assert checked > 20
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_counts_titles_and_messages_agree_with_the_noun(superuser_client: Client) -> None:
    for i in range(21):
        TaskFactory(subscription=SubscriptionFactory(sku=str(800000 + i)))
    html = page_text(superuser_client.get("/admin/watcher/task/").content.decode())
    assert "Выберите задачу для изменения" in html
    assert "21 задача" in html
    html = page_text(superuser_client.get("/admin/watcher/subscription/").content.decode())
    assert "Добавить подписку" in html
    assert "21 подписка" in html
    CompetitorFactory.create_batch(5)
    html = page_text(superuser_client.get("/admin/watcher/competitor/").content.decode())
    assert "Удалить выбранных конкурентов" in html
    assert "5 конкурентов" in html

    response = superuser_client.post(
        "/admin/watcher/subscription/add/",
        {
            "brand": "Nordic",
            "marketplace": "ozon",
            "sku": "5550001",
            "title": "",
            "priority": "0",
            "is_active": "on",
            "competitors-TOTAL_FORMS": "0",
            "competitors-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    messages = [page_text(str(m)).replace(" ", "") for m in response.context["messages"]]
    assert messages == ["Добавлено(подписка):«Nordic·Ozon·5550001»."], messages

    AgentFactory(name="bot-1")
    response = superuser_client.post("/admin/watcher/agent/add/", {"name": "bot-1"})
    assert "Агент с таким названием уже существует." in page_text(response.content.decode())


@pytest.mark.django_db
def test_date_navigation_names_days_in_the_genitive(superuser_client: Client) -> None:
    TaskFactory(scheduled_date=dt.date(2026, 12, 2))
    html = page_text(
        superuser_client.get(
            "/admin/watcher/task/?scheduled_date__year=2026&scheduled_date__month=12"
        ).content.decode()
    )
    assert "2 декабря" in html


def test_periodic_task_intervals_read_right_in_russian() -> None:
    from django_celery_beat.models import IntervalSchedule

    with translation.override("ru"):
        texts = [
            str(IntervalSchedule(every=10, period=IntervalSchedule.SECONDS)),
            str(IntervalSchedule(every=1, period=IntervalSchedule.MINUTES)),
        ]
    assert texts == ["секунды: 10", "раз в минуту"]  # not «каждые 10 секунды», «каждые минут»


@pytest.mark.django_db
def test_alerts_office_and_celery_beat_screens_speak_with_their_grammar(
    superuser_client: Client,
) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from alerts.models import AlertRule

    make_beat_rows()
    rules = AlertRule.objects.count()
    expected = {
        "/admin/alerts/alertrule/": [
            "Выберите правило уведомлений для изменения",
            "Добавить правило уведомлений",
            ["правило", "правила", "правил"][ru_plural_form(rules)] + " уведомлений",
        ],
        "/admin/alerts/alertrule/add/": ["Добавить правило уведомлений"],
        "/admin/office/modulekey/": ["Выберите ключ модуля для изменения", "Добавить ключ модуля"],
        "/admin/office/officeagentstatus/": ["Выберите статус агента для изменения"],
        "/admin/django_celery_beat/intervalschedule/": [
            "Выберите интервал для изменения",
            "Добавить интервал",
            "Удалить выбранные интервалы",
        ],
        "/admin/django_celery_beat/periodictask/": [
            "Выберите периодическую задачу для изменения",
            "Добавить периодическую задачу",
            "Удалить выбранные периодические задачи",
        ],
        "/admin/django_celery_beat/periodictask/add/": ["Добавить периодическую задачу"],
    }
    for url, texts in expected.items():
        html = page_text(superuser_client.get(url).content.decode())
        for text in texts:
            assert text in html, (url, text)
    intervals = IntervalSchedule.objects.count()
    html = page_text(
        superuser_client.get("/admin/django_celery_beat/intervalschedule/").content.decode()
    )
    form = ["интервал", "интервала", "интервалов"][ru_plural_form(intervals)]
    assert f"{intervals} {form}" in html

    tasks = list(PeriodicTask.objects.values_list("pk", flat=True)[:3])
    response = superuser_client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", ACTION_CHECKBOX_NAME: [str(pk) for pk in tasks]},
        follow=True,
    )
    verb = ["задача выключена", "задачи выключены", "задач выключено"][ru_plural_form(len(tasks))]
    assert [str(m) for m in response.context["messages"]] == [f"{len(tasks)} {verb}"]
