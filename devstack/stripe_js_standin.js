// Development only: completes localstripe's Stripe.js stand-in for the shop's checkout page.
// localstripe's confirmCardPayment only simulates a 3-D Secure step and never uses the card,
// and its createPaymentMethod does nothing. Here both use the card typed into the stand-in's
// Card Element, so a page's code is exactly what it would be against real Stripe.js:
// stripe.confirmCardPayment(clientSecret, {payment_method: {card}}) charges the card (through
// the emulator's /_vult/confirm_card_payment, which checks the publishable key and the
// client secret as Stripe does) and answers {paymentIntent} or {error: {type, code, message}}.
(function () {
  const localstripe = window.Stripe;

  async function post(path, payload) {
    // A plain-text body keeps this a "simple" cross-origin request (no preflight).
    const response = await fetch(`${LOCALSTRIPE_BASE_API}${path}`, {
      method: 'POST', body: JSON.stringify(payload),
    });
    const body = await response.json().catch(() => ({}));
    return {ok: response.status === 200 && !body.error, body};
  }

  function cardOf(data) {
    const element = data && data.payment_method && data.payment_method.card;
    return element && element.value ? element.value.card : null;
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
      return ok ? {paymentIntent: body} : {error: body.error || {message: 'The payment failed.'}};
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
