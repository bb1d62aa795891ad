"""Russian grammar in the admin's own phrases, for every app's screens.

Here rather than in an app because ``parser`` may not import ``watcher`` and every app's admin
needs it (as ``config.roles``); it knows only Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse
from django.utils.functional import Promise
from django.utils.translation import gettext_noop, ngettext, ngettext_lazy, pgettext

# --- Russian grammar in the admin's own phrases -----------------------------------------------
#
# Django's admin puts a model's verbose name, in the nominative, into its phrases («Добавить
# подписка»). Our screens pass the right case instead (``Grammar``); for screens we do not own
# (django-celery-beat, registered again with a grammar in ``watcher.admin_beat``) and any model
# without one, the catalog re-translates Django's phrases so that a name in the nominative still
# reads correctly («Выберите для изменения: …»). The phrases are listed here so that
# ``makemessages`` keeps them in our catalog, which takes precedence over Django's.

DJANGO_PHRASES = (
    gettext_noop("Select %s to change"),
    gettext_noop("Select %s to view"),
    gettext_noop("Add %s"),
    gettext_noop("Add %(name)s"),
    gettext_noop("Change %s"),
    gettext_noop("View %s"),
    gettext_noop("Cannot delete %(name)s"),
    gettext_noop("Delete selected %(verbose_name_plural)s"),
    gettext_noop("Successfully deleted %(count)d %(items)s."),
    gettext_noop("The {name} “{obj}” was added successfully."),
    gettext_noop("The {name} “{obj}” was added successfully. You may add another {name} below."),
    gettext_noop("The {name} “{obj}” was changed successfully."),
    gettext_noop("The {name} “{obj}” was changed successfully. You may edit it again below."),
    gettext_noop("The {name} “{obj}” was changed successfully. You may add another {name} below."),
    gettext_noop("The %(name)s “%(obj)s” was deleted successfully."),
    gettext_noop("Added {name} “{object}”."),
    gettext_noop("Changed {fields} for {name} “{object}”."),
    gettext_noop("Deleted {name} “{object}”."),
    gettext_noop("Add another %(verbose_name)s"),
    gettext_noop(
        'Are you sure you want to delete the %(object_name)s "%(escaped_object)s"? All of the '
        "following related items will be deleted:"
    ),
    gettext_noop(
        "Deleting the %(object_name)s '%(escaped_object)s' would require deleting the following "
        "protected related objects:"
    ),
    gettext_noop(
        "Deleting the %(object_name)s '%(escaped_object)s' would result in deleting related "
        "objects, but your account doesn't have permission to delete the following types of "
        "objects:"
    ),
    gettext_noop("%(model_name)s with this %(field_label)s already exists."),
    gettext_noop("%(model_name)s with this %(field_labels)s already exists."),
    gettext_noop("Import finished: {} new, {} updated, {} deleted and {} skipped {}."),
    # django-celery-beat's interval names: «каждые 10 секунды» → «секунды: 10», «раз в минуту».
    gettext_noop("every {} {}"),
    gettext_noop("every {}"),
    gettext_noop("Day"),
    gettext_noop("Hour"),
    gettext_noop("Minute"),
    gettext_noop("Second"),
    gettext_noop("Microsecond"),
    ngettext_lazy(
        "%(count)s %(name)s was changed successfully.",
        "%(count)s %(name)s were changed successfully.",
    ),
)


@dataclass(frozen=True)
class Grammar:
    """How one model's name reads inside the admin's phrases.

    ``accusative`` fills «Выберите …», «Добавить …», «Изменить …»; ``delete_selected`` is the
    whole action label (animate nouns change the adjective too: «выбранных конкурентов»);
    ``count`` is an ``ngettext_lazy`` with ``%(count)d`` for «1 подписка», «5 подписок».
    """

    accusative: str | Promise
    delete_selected: str | Promise
    count: str | Promise


class GrammarAdmin(admin.ModelAdmin):
    """Titles, the add button, the delete action and counts in the model's right case."""

    grammar: Grammar | None = None

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.grammar is not None:
            if self.has_change_permission(request):
                phrase = pgettext("accusative", "Select %s to change")
            else:
                phrase = pgettext("accusative", "Select %s to view")
            extra_context = {
                "title": phrase % self.grammar.accusative,
                "add_label": pgettext("accusative", "Add %s") % self.grammar.accusative,
                **(extra_context or {}),
            }
        return super().changelist_view(request, extra_context)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if self.grammar is not None:
            if object_id is None:
                phrase = pgettext("accusative", "Add %s")
            else:
                obj = self.get_object(request, unquote(object_id))
                if obj is None or self.has_change_permission(request, obj):
                    phrase = pgettext("accusative", "Change %s")
                else:
                    phrase = pgettext("accusative", "View %s")
            extra_context = {"title": phrase % self.grammar.accusative, **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if self.grammar is not None and "delete_selected" in actions:
            func, name, _description = actions["delete_selected"]
            actions["delete_selected"] = (func, name, self.grammar.delete_selected)
        return actions


def count_label(model_admin: admin.ModelAdmin | None, count: int) -> str:
    """«21 задача», «5 задач»: the paginator's total with the noun in the right form."""
    grammar = getattr(model_admin, "grammar", None)
    if grammar is not None:
        return str(grammar.count % {"count": count})
    return ngettext("%(count)d row", "%(count)d rows", count) % {"count": count}


# Names of a library without a Russian catalog Django can find (djangorestframework-simplejwt
# ships ``ru_RU`` only): translated in ours so that the admin index reads Russian.
LIBRARY_NAMES = (
    gettext_noop("Token Blacklist"),
    gettext_noop("Outstanding Token"),
    gettext_noop("Outstanding Tokens"),
    gettext_noop("Blacklisted Token"),
    gettext_noop("Blacklisted Tokens"),
)
