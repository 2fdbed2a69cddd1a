"""The staff side: console `/admin/` and JSON API `/api/v1` for municipality staff.

Modules: `tenancy` (roles, tenants, the request's `Principal`), `passwords`, `accounts` (staff
accounts, login with throttling), `sessions`, `csrf`, `audit`, `apikeys`, `api` (the API route
registry and its OpenAPI document), `console` (the console page registry), `web` (wiring:
`add_staff_routes`), `dashboard`, `auth` (login, logout, password pages) and `resources/`.

This package's `__init__` imports nothing: `bot.storage` imports `bot.staff.tenancy`.
"""
