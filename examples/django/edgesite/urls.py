from django.urls import path
from edge_session.django import lookup

from . import views

urlpatterns = [
    path("", views.home),
    path("login", views.login_view),
    path("logout", views.logout_view),
    path("account", views.account),
    path("api/whoami", views.whoami),
    path("account/sign-out-other-devices", views.sign_out_other_devices),
    path("cart", views.cart),
    path("api/cart", views.api_cart),
    path("cart/add", views.cart_add),
    path("cart/remove", views.cart_remove),
    path("edge-session/lookup", lookup),
]
