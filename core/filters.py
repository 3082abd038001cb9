"""Input limits every list filter shares (pages and API alike).

Long enough for any real search, short enough that no LIKE pattern costs much (DESIGN.md errors:
a huge value is bad input, a 400, not a slow query).
"""

TEXT_MAX = 200
SITE_CODE_MAX = 20
USERNAME_MAX = 150
