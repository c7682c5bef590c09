"""The status pages of `campaign serve`: campaigns with their state and progress, one campaign's detail
updating live, and pause, resume and cancel for an operator signed in with an API key."""

from __future__ import annotations

from aiohttp import web

from campaign.service.pages import views


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", views.root)
    app.router.add_get("/ui", views.root)
    app.router.add_get("/ui/", views.campaign_list)
    app.router.add_get(views.SIGN_IN, views.sign_in_form)
    app.router.add_post(views.SIGN_IN, views.sign_in)
    app.router.add_post("/ui/sign-out", views.sign_out)
    app.router.add_get("/ui/campaigns/{id}", views.campaign_page)
    app.router.add_get("/ui/campaigns/{id}/status", views.campaign_json)
    app.router.add_post("/ui/campaigns/{id}/{action:pause|resume|cancel}", views.steer)
    app.router.add_static("/ui/static/", views.STATIC_DIR)
