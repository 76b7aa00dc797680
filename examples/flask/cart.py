"""The cart, in the worker's session data: one key per product, "cart:<sku>": {"name", "qty"}
(the name as it was when added), so that two products added at once (two tabs, two requests in
flight) are both kept. Two changes of the same product at once: the one applied last wins."""
from flask import Blueprint, jsonify, redirect, request

from pages import edge, login_required, page

cart = Blueprint("cart", __name__)

PRODUCTS = {"tea": {"name": "Green tea"}, "cafe": {"name": "Café crème"}, "mug": {"name": "Mug"}}
CART = "cart:"
MAX_QTY = 99

CART_PAGE = """{% if unavailable %}<p>Your cart cannot be shown right now. It is not lost: try again in a moment.</p>
{% elif items %}<ul>{% for i in items %}<li>{{ i.name }} × {{ i.qty }} <form method="post" action="/cart/remove">
<input type="hidden" name="sku" value="{{ i.sku }}"><button>Remove</button></form></li>{% endfor %}</ul>
{% else %}<p>Your cart is empty.</p>{% endif %}
<h2>Products</h2><ul>{% for sku, p in products.items() %}<li>{{ p.name }} <form method="post" action="/cart/add">
<input type="hidden" name="sku" value="{{ sku }}"><button>Add</button></form></li>{% endfor %}</ul>"""


def items_of(data):
    items = []
    for key, item in sorted(data.items()):
        if key.startswith(CART) and isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("qty"), int):
            items.append({"sku": key[len(CART):], "name": item["name"], "qty": item["qty"]})
    return items


def product():
    sku = request.form.get("sku", "")
    return sku if sku in PRODUCTS else None


@cart.get("/api/cart")
@login_required
def api_cart():
    s = edge()  # data is None when the session has data that cannot be read now: not empty
    return jsonify(status=s.data_status, version=s.data_version, items=None if s.data is None else items_of(s.data))


@cart.get("/cart")
@login_required
def cart_page():
    s = edge()
    unavailable = s.data is None
    items = [] if unavailable else items_of(s.data)
    return page("Your cart", CART_PAGE, notice=s.flash("notice"), unavailable=unavailable, items=items, products=PRODUCTS)


@cart.post("/cart/add")
@login_required
def cart_add():
    sku, s = product(), edge()
    if sku is None:
        return page("Your cart", "<p>No such product.</p>", status=400)
    if s.data is None:
        # The new quantity is computed from the current one: without it, do not guess.
        body, status = page("Your cart", "<p>Your cart cannot be changed right now.</p>", status=503)
        return body, status, {"Retry-After": "5"}
    qty = s.data.get(CART + sku, {}).get("qty", 0)
    s.data[CART + sku] = {"name": PRODUCTS[sku]["name"], "qty": min(qty + 1, MAX_QTY)}
    return redirect("/cart", 303)


@cart.post("/cart/remove")
@login_required
def cart_remove():
    sku, s = product(), edge()
    if sku is None:
        return page("Your cart", "<p>No such product.</p>", status=400)
    # A removal needs no read: patch() sends it even when the data cannot be read right now.
    s.patch({CART + sku: None})
    s.flash("notice", f"{PRODUCTS[sku]['name']} removed from your cart.")
    return redirect("/cart", 303)
