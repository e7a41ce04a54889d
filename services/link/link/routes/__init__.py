"""HTTP controllers of the link service, one module per URL area."""

from link.routes.idems import IdemsController
from link.routes.link_kinds import LinkKindsController
from link.routes.links import LinkController
from link.routes.tenants import TenantController
from link.routes.usage import UsageController

CONTROLLERS = [LinkController, IdemsController, LinkKindsController, TenantController, UsageController]
