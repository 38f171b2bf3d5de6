"""The SOAP partner `login` call, answered the way simple-salesforce reads it: the first
elements named exactly `sessionId` and `serverUrl` (so unprefixed), and on failure
`sf:exceptionCode` / `sf:exceptionMessage` inside a 500 fault."""

from __future__ import annotations

from xml.etree import ElementTree
from xml.sax.saxutils import escape

from handoff.connectors.salesforce.twin_schema import SANDBOX_USER_ID

SANDBOX_USERNAME = "handoff@example.com"
SANDBOX_PASSWORD = "sandbox"
SANDBOX_SECURITY_TOKEN = "TOKEN"
SANDBOX_ORG_ID = "00DRO00000000012AA"
SESSION_SECONDS_VALID = 7200

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" {namespaces}>'
    "<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
)
_INVALID_LOGIN = "Invalid username, password, security token; or user locked out."


def credentials(envelope: bytes) -> tuple[str, str] | None:
    """Username and password (security token appended) from a login envelope."""
    try:
        root = ElementTree.fromstring(envelope)
    except ElementTree.ParseError:
        return None
    found = {el.tag.rpartition("}")[2]: el.text or "" for el in root.iter()}
    if "username" not in found or "password" not in found:
        return None
    return found["username"], found["password"]


def accepts(username: str, password_and_token: str) -> bool:
    return (username, password_and_token) == (
        SANDBOX_USERNAME, SANDBOX_PASSWORD + SANDBOX_SECURITY_TOKEN
    )


def login_response(base_url: str, api_version: str, session_id: str) -> str:
    """`base_url` is the twin's own scheme://host:port, so the client comes back to it."""
    server_url = f"{base_url}/services/Soap/u/{api_version}/{SANDBOX_ORG_ID}"
    result = (
        f"<metadataServerUrl>{escape(base_url)}/services/Soap/m/{api_version}/{SANDBOX_ORG_ID}"
        "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{escape(server_url)}</serverUrl><sessionId>{escape(session_id)}</sessionId>"
        f"<userId>{SANDBOX_USER_ID}</userId><userInfo>"
        f"<organizationId>{SANDBOX_ORG_ID}</organizationId>"
        f"<sessionSecondsValid>{SESSION_SECONDS_VALID}</sessionSecondsValid>"
        f"<userName>{SANDBOX_USERNAME}</userName></userInfo>"
    )
    return _ENVELOPE.format(
        namespaces='xmlns="urn:partner.soap.sforce.com"',
        body=f"<loginResponse><result>{result}</result></loginResponse>",
    )


def login_fault(code: str = "INVALID_LOGIN", message: str = _INVALID_LOGIN) -> str:
    fault = (
        f"<soapenv:Fault><faultcode>{code}</faultcode>"
        f"<faultstring>{code}: {escape(message)}</faultstring><detail>"
        '<sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault>"
    )
    return _ENVELOPE.format(namespaces='xmlns:sf="urn:fault.partner.soap.sforce.com"', body=fault)
