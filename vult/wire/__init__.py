"""The HTTP wire contract (camelCase, the seed's): the models the API serves and the
order as every reader sees it, the API and the order events' payload alike."""
