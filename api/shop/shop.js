// The Vult shop's reference checkout: the catalogue, a cart, the order form, and payment
// with Stripe.js, against the Vult Orders API. No framework and no build step.
'use strict';

const ADDRESS_FIELDS = [
  ['fullName', 'Full name', 'name', true],
  ['addressLine1', 'Address', 'address-line1', true],
  ['addressLine2', 'Address line 2', 'address-line2', false],
  ['city', 'City', 'address-level2', true],
  ['state', 'State or region', 'address-level1', true],
  ['postalCode', 'Postal code', 'postal-code', true],
  ['country', 'Country', 'country-name', true],
  ['phone', 'Phone', 'tel', false],
];
const CANCELLABLE = ['Pending', 'PaymentProcessing', 'Failed', 'Confirmed'];

const app = document.getElementById('app');
let config = null;
let stripe = null;
let card = null;
const cart = new Map(); // productId -> {product, quantity}

// ---- small helpers -------------------------------------------------------------------

// A refusal that started nothing (429: this browser has too many requests open; 503: the
// shop is busy) says when to come back: sent again then, the same request and key, a few
// times at most.
const BUSY_TRIES = 5;

async function api(method, url, body, headers = {}) {
  const init = {method, headers: {...headers}};
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  for (let tries = 1; ; tries++) {
    const response = await fetch(url, init);
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    const wait = Number(response.headers.get('Retry-After'));
    const refused = (response.status === 429 || response.status === 503) && json?.outcomeKnown === true;
    if (!refused || !(wait > 0) || tries >= BUSY_TRIES) return {status: response.status, body: json};
    await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 10) * 1000));
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else if (value === true) node.setAttribute(key, '');
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function money(amount, currency) {
  return new Intl.NumberFormat('en-US', {style: 'currency', currency}).format(amount);
}

const toCents = (amount) => Math.round(amount * 100);

// Tax as the server computes it: subTotal x rate, rounded half to even, in cents.
function taxCents(subCents, rate) {
  const [whole, fraction = ''] = String(rate).split('.');
  const den = 10 ** fraction.length;
  const num = Number(whole) * den + Number(fraction || 0);
  const exact = subCents * num;
  const quotient = Math.floor(exact / den);
  const remainder = exact - quotient * den;
  if (remainder * 2 > den) return quotient + 1;
  if (remainder * 2 < den) return quotient;
  return quotient % 2 === 0 ? quotient : quotient + 1;
}

function announce(text) {
  app.replaceChildren(el('p', {role: 'status', text}));
}

// ---- Stripe.js ------------------------------------------------------------------------

function loadStripe() {
  return new Promise((resolve, reject) => {
    const script = el('script', {src: config.stripeJsUrl});
    script.onload = () => resolve(window.Stripe(config.publishableKey));
    script.onerror = () => reject(new Error('Stripe.js could not be loaded'));
    document.head.append(script);
  });
}

// ---- checkout page -------------------------------------------------------------------

function addressFields(fieldset, prefix) {
  for (const [name, label, autocomplete, required] of ADDRESS_FIELDS) {
    const id = `${prefix}.${name}`;
    fieldset.append(el('p', {class: 'field'},
      el('label', {for: id, text: required ? label : `${label} (optional)`}),
      el('input', {id, name: id, autocomplete: `${prefix === 'billingAddress' ? 'billing' : 'shipping'} ${autocomplete}`, required})));
  }
}

function renderProducts(products) {
  const list = document.getElementById('products');
  for (const product of products) {
    const price = money(product.estimatedMSRP, config.currency);
    const add = el('button', {type: 'button', text: 'Add to cart',
      'aria-label': `Add ${product.name} to cart`});
    add.onclick = () => { changeQuantity(product, 1); };
    const image = el('img', {src: product.imageUrls[0] || '', alt: '', width: 64, height: 64});
    image.onerror = () => image.replaceWith(el('span', {class: 'no-image', 'aria-hidden': 'true', text: product.name[0]}));
    list.append(el('li', {class: 'product'}, image,
      el('span', {class: 'name', text: product.name}),
      el('span', {class: 'size', text: product.size ? `Size ${product.size}` : ''}),
      el('span', {class: 'price', text: price}), add));
  }
}

function changeQuantity(product, delta) {
  const line = cart.get(product.productId) || {product, quantity: 0};
  line.quantity = Math.max(0, Math.min(1000, line.quantity + delta));
  if (line.quantity === 0) cart.delete(product.productId); else cart.set(product.productId, line);
  renderCart();
}

function renderCart() {
  const table = document.getElementById('cart');
  document.getElementById('cart-empty').hidden = cart.size > 0;
  table.hidden = cart.size === 0;
  const body = table.tBodies[0];
  body.replaceChildren();
  let subCents = 0;
  for (const {product, quantity} of cart.values()) {
    const lineCents = toCents(product.estimatedMSRP) * quantity;
    subCents += lineCents;
    const qty = el('input', {type: 'number', min: 0, max: 1000, value: quantity,
      'aria-label': `Quantity of ${product.name}`, inputmode: 'numeric'});
    qty.onchange = () => changeQuantity(product, (Number(qty.value) || 0) - quantity);
    body.append(el('tr', {}, el('td', {text: product.name}), el('td', {}, qty),
      el('td', {text: money(lineCents / 100, config.currency)})));
  }
  const tax = taxCents(subCents, config.taxRate);
  const shipping = toCents(config.shippingCost);
  const rows = [['Subtotal', subCents], ['Tax', tax], ['Shipping', shipping], ['Total', subCents + tax + shipping]];
  table.tFoot.replaceChildren(...rows.map(([label, cents]) => el('tr', {},
    el('th', {scope: 'row', colspan: 2, text: label}), el('td', {text: money(cents / 100, config.currency)}))));
}

function readAddress(prefix) {
  const address = {};
  for (const [name] of ADDRESS_FIELDS) {
    const value = document.getElementById(`${prefix}.${name}`).value.trim();
    if (value) address[name] = value;
  }
  return address;
}

function clearErrors() {
  const box = document.getElementById('form-errors');
  box.hidden = true;
  box.replaceChildren();
  for (const input of document.querySelectorAll('[aria-invalid]')) {
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
  }
  for (const old of document.querySelectorAll('.field-error')) old.remove();
}

// The server's 400 {"errors": [...]}: each beside its field when it names one, and all
// in the summary at the top of the form, which takes the focus.
function showErrors(errors) {
  clearErrors();
  const box = document.getElementById('form-errors');
  box.append(el('p', {text: 'Please correct the following:'}),
    el('ul', {}, ...errors.map((text) => el('li', {text}))));
  box.hidden = false;
  for (const text of errors) {
    const [field, ...rest] = text.split(': ');
    const input = document.getElementById(field);
    if (!input || !rest.length) continue;
    const id = `${field}-error`;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', id);
    input.parentElement.append(el('span', {id, class: 'field-error', text: rest.join(': ')}));
  }
  box.focus();
}

function paymentError(message) {
  const box = document.getElementById('payment-error');
  box.textContent = message;
  box.hidden = !message;
}

// One checkout, one order: the key makes a retried create return the same order.
function checkout() {
  const saved = JSON.parse(sessionStorage.getItem('vult-checkout') || 'null');
  if (saved) return saved;
  const fresh = {key: crypto.randomUUID(), orderId: null};
  sessionStorage.setItem('vult-checkout', JSON.stringify(fresh));
  return fresh;
}

function askToAuthenticate() {
  // One button, announced: the customer chooses to open the bank's check again.
  return new Promise((resolve) => {
    paymentError('');
    const note = el('p', {role: 'alert', id: 'authenticate-note',
      text: 'Your bank needs you to confirm this payment (3-D Secure). '});
    const again = el('button', {type: 'button', id: 'authenticate', text: 'Confirm with your bank'});
    again.onclick = () => { note.remove(); resolve(); };
    note.append(again);
    document.getElementById('pay').before(note);
    again.focus();
  });
}

async function pay(event) {
  event.preventDefault();
  const button = document.getElementById('pay');
  button.disabled = true;
  paymentError('');
  try {
    const state = checkout();
    if (!state.orderId) {
      const order = {
        customerEmail: document.getElementById('customerEmail').value.trim(),
        shippingAddress: readAddress('shippingAddress'),
        lineItems: [...cart.values()].map(({product, quantity}) => ({productId: product.productId, quantity})),
      };
      if (document.getElementById('separate-billing').checked) {
        order.billingAddress = readAddress('billingAddress');
      }
      const created = await api('POST', '/api/orders', order, {'Idempotency-Key': state.key});
      if (created.status === 400) { showErrors(created.body.errors); return; }
      if (created.status !== 201) { paymentError(created.body?.error || 'The order could not be placed; please try again.'); return; }
      clearErrors();
      state.orderId = created.body.orderId;
      sessionStorage.setItem('vult-checkout', JSON.stringify(state));
    }
    const intent = await api('POST', `/api/orders/${state.orderId}/payment`);
    if (intent.status !== 200) { paymentError(intent.body?.error || 'Payment could not be started; please try again.'); return; }
    let result = await stripe.confirmCardPayment(intent.body.clientSecret, {payment_method: {card}});
    while (result.paymentIntent && result.paymentIntent.status === 'requires_action') {
      // The card needs 3-D Secure and the challenge was closed unanswered: the order waits
      // for it (PaymentProcessing); ask the customer to authenticate.
      await askToAuthenticate();
      result = await stripe.handleNextAction({clientSecret: intent.body.clientSecret});
    }
    const outcome = await api('GET', `/api/orders/${state.orderId}/status-change?from=PaymentProcessing&timeout=25`);
    if (result.error) {
      paymentError(`${result.error.message} Please try another card.`);
      button.textContent = 'Pay with another card';
      return;
    }
    sessionStorage.removeItem('vult-checkout');
    history.pushState({}, '', `/shop/orders/${state.orderId}`);
    showOrder(outcome.body, outcome.body.status === 'Confirmed' ? 'Thank you: your payment was received.' : '');
  } finally {
    button.disabled = false;
  }
}

async function showCheckout() {
  app.replaceChildren(document.getElementById('checkout').content.cloneNode(true));
  addressFields(document.getElementById('shipping'), 'shippingAddress');
  addressFields(document.getElementById('billing'), 'billingAddress');
  document.getElementById('separate-billing').onchange = (e) => {
    document.getElementById('billing').hidden = !e.target.checked;
  };
  const products = await api('GET', '/api/products');
  renderProducts(products.body);
  renderCart();
  stripe = stripe || await loadStripe();
  card = stripe.elements().create('card');
  card.mount('#card');
  document.getElementById('order-form').onsubmit = pay;
}

// ---- order page ----------------------------------------------------------------------

function showOrder(order, message = '') {
  const currency = order.currency;
  const rows = order.lineItems.map((item) => el('tr', {},
    el('td', {text: item.productSize ? `${item.productName} (${item.productSize})` : item.productName}),
    el('td', {text: item.quantity}), el('td', {text: money(item.subTotal, currency)})));
  const totals = [['Subtotal', order.subTotal], ['Tax', order.tax], ['Shipping', order.shippingCost], ['Total', order.total]]
    .map(([label, amount]) => el('tr', {}, el('th', {scope: 'row', colspan: 2, text: label}), el('td', {text: money(amount, currency)})));
  const notes = [];
  if (message) notes.push(el('p', {class: 'notice', role: 'status', text: message}));
  if (order.status === 'Failed' && order.paymentErrorMessage) notes.push(el('p', {text: `Payment failed: ${order.paymentErrorMessage}`}));
  if (order.status === 'Cancelled' && (order.paymentStatus || '').startsWith('refund')) {
    notes.push(el('p', {role: 'status', class: 'notice',
      text: order.paymentStatus === 'refunded' ? 'Your payment was refunded.' : 'Your payment is being refunded.'}));
  }
  const actions = [];
  if (CANCELLABLE.includes(order.status)) {
    const cancel = el('button', {type: 'button', text: 'Cancel order'});
    cancel.onclick = async () => {
      cancel.disabled = true;
      const response = await api('POST', `/api/orders/${order.orderId}/cancel`);
      const fresh = await api('GET', `/api/orders/${order.orderId}`);
      const said = {204: 'Your order was cancelled.', 202: response.body?.message}[response.status];
      showOrder(fresh.body, said || response.body?.error || 'The order could not be cancelled.');
    };
    actions.push(cancel);
  }
  app.replaceChildren(
    el('h1', {text: `Order ${order.orderNumber}`}),
    ...notes,
    el('p', {}, 'Status: ', el('strong', {id: 'order-status', text: order.status})),
    el('table', {}, el('caption', {class: 'visually-hidden', text: 'Items and totals'}),
      el('thead', {}, el('tr', {}, el('th', {scope: 'col', text: 'Item'}), el('th', {scope: 'col', text: 'Qty'}), el('th', {scope: 'col', text: 'Price'}))),
      el('tbody', {}, ...rows), el('tfoot', {}, ...totals)),
    ...actions,
    el('p', {}, el('a', {href: '/shop/', text: 'Back to the shop'})));
  app.focus();
}

async function route() {
  config = config || (await api('GET', '/api/config')).body;
  const match = location.pathname.match(/^\/shop\/orders\/([0-9a-f-]{36})$/);
  if (!match) return showCheckout();
  const order = await api('GET', `/api/orders/${match[1]}`);
  if (order.status !== 200) return announce('Order not found.');
  return showOrder(order.body);
}

window.addEventListener('popstate', route);
route().catch((error) => announce(`Something went wrong: ${error.message}`));
