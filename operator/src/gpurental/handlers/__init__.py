"""kopf handlers: only the optional validating webhook (`admission`). The watches are the
operator's own informers (`gpurental.watches`), not kopf's."""
