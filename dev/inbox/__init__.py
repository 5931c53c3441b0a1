"""The local inbox: the mail server and webhook receiver the dev stack's worker sends to, so
that what a customer and the shop's systems would get after a purchase can be seen at
http://127.0.0.1:8025 (`python3 tasks.py run`). One process, two servers on 127.0.0.1:

    python -m dev.inbox --smtp-port 1025 --http-port 8025 --data-dir .data/inbox \
        --endpoint local-receiver=whsec_...

- __main__.py: the command line; runs both servers on one event loop.
- shelf.py: what is kept, as numbered files in the data folder (a restart keeps them).
- faults.py: the faults a test or a developer sets: refused or deferred mail, a webhook
  endpoint that answers 503 or 410, or slowly.
- smtp_server.py: the SMTP server (aiosmtpd), applying the mail faults.
- mails.py: a kept message read as the customer sees it (headers, text and HTML parts).
- receiver.py: POST /webhooks/{endpoint}, checked with the Standard Webhooks library.
- pages.py: the HTML pages, everything escaped, under a strict Content-Security-Policy.
- web.py: the HTTP server: the pages, the receiver and the JSON API tests use.
- local_receiver.py: the dev stack's one endpoint and its development secret.
- launch.py: starting the process as a child of the dev stack or of a test.
"""
