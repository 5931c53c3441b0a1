// Development only: completes localstripe's Stripe.js stand-in for the shop's checkout page.
// localstripe's confirmCardPayment only simulates a 3-D Secure step and never uses the card,
// and its createPaymentMethod does nothing. Here both use the card typed into the stand-in's
// Card Element, so a page's code is exactly what it would be against real Stripe.js:
// stripe.confirmCardPayment(clientSecret, {payment_method: {card}}) charges the card (through
// the emulator's /_vult/confirm_card_payment, which checks the publishable key and the
// client secret as Stripe does) and answers {paymentIntent} or {error: {type, code, message}}.
// A card that needs 3-D Secure shows the challenge first, as Stripe.js does; closing it
// fails the authentication, as Stripe.js reports a challenge the customer closed.
// stripe.handleNextAction({clientSecret}) shows it for a PaymentIntent still waiting (a page
// reloaded during the challenge).
// Loaded from /js.stripe.com/<release>/stripe.js, it speaks that release's API version
// (STRIPE_JS_API_VERSION, set by the emulator) and sends it with each request, as Stripe.js
// at a release does ("Stripe.js versioning", docs.stripe.com/sdks/stripejs-versioning).
(function () {
  const localstripe = window.Stripe;
  const apiVersion = typeof STRIPE_JS_API_VERSION === 'undefined' ? null : STRIPE_JS_API_VERSION;

  async function post(path, payload) {
    // A plain-text body keeps this a "simple" cross-origin request (no preflight).
    const versioned = apiVersion ? {...payload, _stripe_version: apiVersion} : payload;
    const response = await fetch(`${LOCALSTRIPE_BASE_API}${path}`, {
      method: 'POST', body: JSON.stringify(versioned),
    });
    const body = await response.json().catch(() => ({}));
    return {ok: response.status === 200 && !body.error, body};
  }

  function cardOf(data) {
    const element = data && data.payment_method && data.payment_method.card;
    return element && element.value ? element.value.card : null;
  }

  // Stripe.js shows a card's 3-D Secure challenge itself, over the page; like Stripe's test
  // page, this one offers to complete or to fail the authentication. Closing it (its Close
  // button, or Escape) is a failed authentication, as at Stripe.js.
  function challenge() {
    return new Promise((resolve) => {
      const dialog = document.createElement('dialog');
      dialog.setAttribute('aria-label', '3D Secure authentication');
      dialog.innerHTML = '<p>3D Secure test payment: your bank asks you to confirm this ' +
        'payment.</p><button type="button" value="complete">Complete authentication</button> ' +
        '<button type="button" value="fail">Fail authentication</button> ' +
        '<button type="button" value="close" aria-label="Close">&times;</button>';
      dialog.addEventListener('click', (e) => {
        if (e.target.tagName !== 'BUTTON') return;
        dialog.close();
        dialog.remove();
        resolve(e.target.value === 'complete');
      });
      dialog.addEventListener('cancel', () => { dialog.remove(); resolve(false); });
      document.body.appendChild(dialog);
      dialog.showModal();
    });
  }

  async function authenticate(apiKey, clientSecret, intent) {
    if (!intent || intent.status !== 'requires_action') return {paymentIntent: intent};
    const success = await challenge();
    const {ok, body} = await post('/_vult/authenticate',
                                  {key: apiKey, client_secret: clientSecret, success});
    if (!ok) return {error: body.error || {message: 'The payment failed.'}};
    if (body.status === 'requires_payment_method') {
      return {error: {type: 'invalid_request_error', code: 'payment_intent_authentication_failure',
                      message: 'We are unable to authenticate your payment method. Please ' +
                               'choose a different payment method and try again.',
                      payment_intent: body}};
    }
    return {paymentIntent: body};
  }

  window.Stripe = (apiKey, options) => {
    const stripe = localstripe(apiKey, options);
    stripe.confirmCardPayment = async (clientSecret, data) => {
      const card = cardOf(data);
      if (!card || !card.number) {
        return {error: {type: 'validation_error', code: 'incomplete_number',
                        message: 'Your card number is incomplete.'}};
      }
      const {ok, body} = await post('/_vult/confirm_card_payment',
                                    {key: apiKey, client_secret: clientSecret, card});
      if (!ok) return {error: body.error || {message: 'The payment failed.'}};
      return authenticate(apiKey, clientSecret, body);
    };
    stripe.handleNextAction = async ({clientSecret}) => {
      const id = (clientSecret || '').split('_secret_')[0];
      const {ok, body} = await post('/_vult/payment_intent', {key: apiKey, client_secret: clientSecret, id});
      return ok ? authenticate(apiKey, clientSecret, body) : {error: body.error};
    };
    stripe.createPaymentMethod = async (data) => {
      const card = data && data.card && data.card.value ? data.card.value.card : null;
      if (!card) return {error: {type: 'validation_error', message: 'Your card number is incomplete.'}};
      const {ok, body} = await post('/_vult/payment_methods', {key: apiKey, card});
      return ok ? {paymentMethod: body} : {error: body.error};
    };
    return stripe;
  };
})();
