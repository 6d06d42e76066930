"""Sign-in through the API (each SIWE fault a 401 with its reason), sessions, API keys, the access
rules (anonymous 401, wrong role 403, another party's key 404, a revoked credential at once), and
errors as problem details everywhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from api_world import Api, assert_problem

from flexledger.api.auth import SessionTokens
from flexledger.api.siwe import format_time
from flexledger.identity import keys
from flexledger.identity.roles import Role


def test_a_wallet_signs_in_and_its_roles_are_read_from_the_chain(api: Api) -> None:
    token = api.sign_in(api.chain.owner)
    me = api.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json() == {"address": api.chain.owner.address, "roles": ["PROSUMER"], "byKey": False}


def _later(minutes: int) -> str:
    return format_time(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes))


@pytest.mark.parametrize(("changes", "reason"), [
    ({"domain": "evil.example"}, "domain"),
    ({"uri": "https://evil.example"}, "uri"),
    ({"chain_id": 1}, "chain_id"),
    ({"expiration_time": _later(-1), "issued_at": _later(-10)}, "expired"),
    ({"not_before": _later(5)}, "not_yet_valid"),
    ({"nonce": "0123456789abcdef"}, "nonce"),  # never issued
])
def test_each_sign_in_fault_is_401_with_its_reason(api: Api, changes: dict[str, Any], reason: str) -> None:
    response = api.client.post("/v1/auth/login", json=api.login_body(api.chain.owner, **changes))
    assert_problem(response, 401, reason=reason)
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_reused_nonce_someone_elses_signature_and_a_malformed_message_are_401(api: Api) -> None:
    body = api.login_body(api.chain.owner)
    assert api.client.post("/v1/auth/login", json=body).status_code == 200
    assert_problem(api.client.post("/v1/auth/login", json=body), 401, reason="nonce")
    forged = api.login_body(api.chain.owner, key=api.chain.owner2)
    assert_problem(api.client.post("/v1/auth/login", json=forged), 401, reason="signature")
    mangled = {**body, "message": body["message"].replace("\n", "\r\n")}
    assert_problem(api.client.post("/v1/auth/login", json=mangled), 401, reason="malformed")
    assert_problem(api.client.post("/v1/auth/login", json={**body, "signature": "0xzz"}), 422)


def test_a_refused_message_does_not_spend_its_nonce(api: Api) -> None:
    issued = api.client.post("/v1/auth/nonce").json()["nonce"]
    forged = api.login_body(api.chain.owner, key=api.chain.owner2, nonce=issued)
    assert_problem(api.client.post("/v1/auth/login", json=forged), 401, reason="signature")
    good = api.login_body(api.chain.owner, nonce=issued)
    assert api.client.post("/v1/auth/login", json=good).status_code == 200


def test_tokens_forged_expired_or_missing_are_401(api: Api) -> None:
    assert_problem(api.client.get("/v1/auth/me"), 401)
    assert_problem(api.client.get("/v1/auth/me", headers={"Authorization": "Bearer nonsense"}), 401)
    other = SessionTokens(b"another server's secret", 900).issue(api.chain.owner.address, 2_000_000_000)[0]
    assert_problem(api.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {other}"}), 401)
    ours = SessionTokens(api.settings.secret.get_secret_value().encode(), 900)
    expired = ours.issue(api.chain.owner.address, 1_000_000)[0]  # in 1970
    assert_problem(api.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {expired}"}), 401)
    tampered = ours.issue(api.chain.owner.address, 2_000_000_000)[0].replace("fls1.e", "fls1.f")
    assert_problem(api.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {tampered}"}), 401)


def test_keys_are_created_used_listed_and_revoked_by_their_party_only(api: Api) -> None:
    owner, other = api.auth(api.chain.owner), api.auth(api.chain.owner2)
    created = api.client.post("/v1/keys", json={"label": "gateway"}, headers=owner)
    assert created.status_code == 201
    key = created.json()["key"]
    as_key = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/v1/auth/me", headers=as_key).json()["byKey"] is True
    listed = api.client.get("/v1/keys", headers=owner).json()
    assert [k["label"] for k in listed] == ["gateway"] and "key" not in listed[0]
    assert key[:12] == listed[0]["prefix"]
    assert api.client.get("/v1/keys", headers=other).json() == []
    key_id = listed[0]["id"]
    assert_problem(api.client.delete(f"/v1/keys/{key_id}", headers=other), 404)  # not theirs: as if none
    assert_problem(api.client.post("/v1/keys", json={}, headers=as_key), 403)  # a key mints no keys
    assert_problem(api.client.delete(f"/v1/keys/{key_id}", headers=as_key), 403)
    assert api.client.delete(f"/v1/keys/{key_id}", headers=owner).status_code == 204
    assert_problem(api.client.get("/v1/auth/me", headers=as_key), 401)
    assert api.client.get("/v1/keys", headers=owner).json()[0]["revokedAt"] is not None


def test_anonymous_writes_are_401(api: Api) -> None:
    for method, path, body in (("post", "/v1/keys", {}), ("get", "/v1/keys", None), ("delete", "/v1/keys/1", None),
                               ("post", "/v1/offers", {"typedData": {}, "signature": "0x"})):
        assert_problem(api.client.request(method, path, json=body), 401)


def test_a_revoked_credential_loses_access_at_once(api: Api) -> None:
    headers = api.auth(api.chain.aggregator.account)
    key = api.client.post("/v1/keys", json={"label": "server"}, headers=headers).json()["key"]
    offer = api.chain.wire(api.chain.signed(api.chain.offer()))
    assert api.client.post("/v1/offers", json=offer, headers={"Authorization": f"Bearer {key}"}).status_code == 202
    api.chain.deployment.signed_by(api.chain.deployer).roles.revoke_credential(api.chain.aggregator.address,
                                                                               Role.AGGREGATOR.id)
    for who in (headers, {"Authorization": f"Bearer {key}"}):  # the same token and key, a moment later
        second = api.chain.wire(api.chain.signed(api.chain.offer(nonce=2)))
        assert_problem(api.client.post("/v1/offers", json=second, headers=who), 403)
        assert api.client.get("/v1/auth/me", headers=who).json()["roles"] == []


def test_the_wrong_role_is_403(api: Api) -> None:
    offer = api.chain.wire(api.chain.signed(api.chain.offer()))
    dso = keys.dev_accounts()[2]
    assert_problem(api.client.post("/v1/offers", json=offer, headers=api.auth(dso)), 403)


def test_errors_are_problem_details_everywhere(api: Api) -> None:
    client = api.client
    assert_problem(client.get("/v1/nowhere"), 404)
    assert_problem(client.put("/v1/auth/nonce"), 405)
    assert_problem(client.post("/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}),
                   400)
    assert_problem(client.post("/v1/auth/login", json={"message": 5}), 422)
    assert_problem(client.post("/v1/auth/login", content=b"x" * 300_000, headers={"content-type": "application/json"}),
                   413)

    def chunks() -> Any:  # no Content-Length: counted as it streams
        for _ in range(30):
            yield b"x" * 10_000

    assert_problem(client.post("/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}), 413)
    assert_problem(client.delete("/v1/keys/0", headers=api.auth(api.chain.owner)), 422)
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert client.get("/docs").status_code == 200


def test_expired_nonces_are_refused_and_cleared(api: Api) -> None:
    from sqlalchemy import create_engine, func, select

    from flexledger.api.tables import SignInNonce

    issued = api.client.post("/v1/auth/nonce").json()["nonce"]
    engine = create_engine(api.database_url)
    with engine.begin() as connection:  # as if issued long ago
        connection.execute(SignInNonce.__table__.update().values(issued_at=0, expires_at=1))
    body = api.login_body(api.chain.owner, nonce=issued)
    assert_problem(api.client.post("/v1/auth/login", json=body), 401, reason="nonce")
    with engine.connect() as connection:  # the next issue clears it (the login's own nonce stays)
        count = connection.scalar(select(func.count()).select_from(SignInNonce).where(SignInNonce.nonce == issued))
    engine.dispose()
    assert count == 0


def test_a_key_label_is_printable(api: Api) -> None:
    headers = api.auth(api.chain.owner)
    for label in ("\x00", "tab\there", "bell\x07"):
        assert_problem(api.client.post("/v1/keys", json={"label": label}, headers=headers), 422)
    assert api.client.post("/v1/keys", json={"label": "gateway 7 (Zürich)"}, headers=headers).status_code == 201
