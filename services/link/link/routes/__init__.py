"""HTTP controllers of the link service, one module per URL area."""

from link.routes.links import LinkController

CONTROLLERS = [LinkController]
