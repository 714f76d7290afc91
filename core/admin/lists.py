"""Changelist tools for large tables: a filter on one related row, search on exact indexed
values only, and a paginator that uses PostgreSQL's row estimate for unfiltered lists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


def selected_object_filter(field: str, title: str) -> type[admin.SimpleListFilter]:
    """A list filter on one related row (``?<field>=<pk>``), used by links such as "this
    customer's usage events". It lists only the selected row, never every related row, so it
    costs one query however large the related table is."""

    class SelectedObjectFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(
            self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
        ) -> list[tuple[str, str]]:
            value = self.value()
            if not value:
                return []
            related = model_admin.model._meta.get_field(field).related_model
            try:
                pk = related._meta.pk.to_python(value)
            except ValidationError:
                # offered all the same, so queryset() applies it and the changelist reports it
                return [(value, f"#{value}")]
            obj = related._default_manager.filter(pk=pk).first()
            return [(value, str(obj) if obj is not None else f"#{value}")]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            value = self.value()
            if not value:
                return queryset
            try:
                return queryset.filter(**{field: value})
            except (ValueError, ValidationError) as exc:
                # the changelist answers with its "?e=1" page
                raise IncorrectLookupParameters(exc) from exc

    SelectedObjectFilter.title = title
    SelectedObjectFilter.__name__ = f"Selected{field.title().replace('_', '')}Filter"
    return SelectedObjectFilter


class IndexedSearchMixin(_AdminBase):
    """Search a large table only on exact, indexed values: the integer primary key and
    ``exact_search_fields``. (Django's own search would scan: ``icontains``/``iexact`` use no
    index.)"""

    exact_search_fields: tuple[str, ...] = ()
    search_pk = True

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        # any non-empty value makes the changelist show its search box
        return self.exact_search_fields or ("pk",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q()
        for name in self.exact_search_fields:
            condition |= Q(**{name: term})
        if self.search_pk and term.isdigit() and len(term) < 19:
            condition |= Q(pk=int(term))
        if not condition:
            return queryset.none(), False
        return queryset.filter(condition), False


class EstimatedCountPaginator(Paginator):
    """An exact ``COUNT(*)`` scans the whole table; on an unfiltered list of a table with
    millions of rows (usage, ledger) the page uses PostgreSQL's own row estimate instead, once
    the table is past ``exact_below`` rows. Filtered lists are counted exactly."""

    exact_below = 100_000

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if isinstance(qs, QuerySet) and not qs.query.where:
            with connections[qs.db].cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [qs.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row is not None and row[0] >= self.exact_below:
                return int(row[0])
        return super().count
