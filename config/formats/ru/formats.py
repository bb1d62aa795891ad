"""Russian formats over Django's: the date navigation's days in the genitive («2 декабря»).

Django's ``MONTH_DAY_FORMAT`` for ru is ``j F`` (nominative, «2 Декабрь»); ``E`` is the
month's genitive name.
"""

MONTH_DAY_FORMAT = "j E"
