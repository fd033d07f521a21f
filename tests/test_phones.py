"""Phone normalisation: international, national in the locale's region, invalid."""

from __future__ import annotations

import pytest

from context.phones import region_of_locale, to_e164
from tests.support.api import thread_body


@pytest.mark.parametrize(("raw", "region", "e164"), [
    ("+1 415 555 0123", None, "+14155550123"),
    ("+1 (415) 555-0123", "GB", "+14155550123"),
    ("(415) 555-0123", "US", "+14155550123"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("0044 20 7946 0958", "FR", "+442079460958"),
    ("01 42 68 53 00", "FR", "+33142685300"),
])
def test_numbers_are_normalised_to_e164(raw, region, e164):
    assert to_e164(raw, region) == e164


@pytest.mark.parametrize(("raw", "region", "reason"), [
    ("(415) 555-0123", None, "without a region"),
    ("+1 415 555 012", None, "not a valid phone number"),
    ("call me", "US", "not a phone number"),
    ("   ", "US", "required"),
])
def test_invalid_numbers_are_refused_with_a_reason(raw, region, reason):
    with pytest.raises(ValueError, match=reason):
        to_e164(raw, region)


@pytest.mark.parametrize(("locale", "region"), [
    ("en-US", "US"), ("en_GB", "GB"), ("zh-Hant-TW", "TW"), ("fr", None), (None, None)])
def test_region_comes_from_the_locale(locale, region):
    assert region_of_locale(locale) == region


@pytest.mark.parametrize(("locale", "raw", "e164"), [
    ("en-US", "415-555-0123", "+14155550123"),
    ("en-GB", "020 7946 0958", "+442079460958"),
    ("fr-FR", "01 42 68 53 00", "+33142685300"),
])
def test_the_api_reads_a_national_number_in_the_customers_locale(client, auth, locale, raw, e164):
    body = thread_body(customer={"name": "Jane", "locale": locale, "phone": raw})
    response = client.put("/api/v1/threads/t-1", json=body, headers=auth)
    assert response.status_code == 201
    assert response.get_json()["customer"]["phone"] == e164
    listed = client.get("/api/v1/threads", query_string={"phone": e164}, headers=auth).get_json()
    assert [t["id"] for t in listed["threads"]] == ["t-1"]


def test_a_national_number_without_a_locale_region_is_refused(client, auth):
    body = thread_body(customer={"locale": "fr", "phone": "01 42 68 53 00"})
    response = client.put("/api/v1/threads/t-1", json=body, headers=auth)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "customer.phone"
