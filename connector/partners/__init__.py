"""The partner side: partner users, their sign-in, and the scoped service through which every
partner read and write goes (connector.partners.scope); the web workspace is connector.partners.web."""

from connector.partners.scope import NotFound, PartnerAccount, PartnerScope, ScopeError
from connector.partners.service import PartnerWorkspace
from connector.partners.web import mount
from connector.partners.users import Invite, PartnerUser, PartnerUserError, PartnerUsers

__all__ = ["Invite", "NotFound", "PartnerAccount", "PartnerScope", "PartnerUser", "PartnerUserError",
           "PartnerUsers", "PartnerWorkspace", "ScopeError", "mount"]
