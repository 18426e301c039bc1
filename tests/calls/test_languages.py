"""The call's language (issue 25): choosing it, every fixed line in each language, goodbyes, ratings and
requests for a person in each language, and the stages that use them on real parts."""

from __future__ import annotations

import re

import pytest

from callwise.calls import languages
from callwise.calls.languages import LINES, SUPPORTED, LanguageError, choose, is_goodbye, line, localize, normalize
from callwise.calls.survey import parse_rating
from callwise.handoff import phrases

FOREIGN = [c for c in SUPPORTED if c != "en"]


# ------------------------------------------------------------------------------------------ choosing
def test_the_call_overrides_the_org_which_overrides_detection() -> None:
    assert choose(call="fr", org="de", detected="es", probability=0.99).code == "fr"
    assert choose(org="de-DE", detected="es", probability=0.99).as_dict()["source"] == "org"
    assert choose(detected="es", probability=0.3).code == "es"  # a served language, however unsure
    assert choose().code == "en" and choose().source == "default"


def test_an_unserved_language_falls_back_to_english_and_says_what_was_asked() -> None:
    c = choose(call="pt-BR")
    assert c.code == "en" and not c.supported and c.requested == "pt"
    unsure = choose(detected="pt", probability=0.2)  # an unsure guess of an unserved language is not acted on
    assert unsure.code == "en" and unsure.supported
    sure = choose(detected="pt", probability=0.9)
    assert sure.code == "en" and not sure.supported
    notice = languages.unsupported_notice()
    assert all(languages.NAMES[c] in notice for c in SUPPORTED)


@pytest.mark.parametrize("raw, code", [("es-ES", "es"), ("zh_CN", "zh"), ("cmn", "zh"), ("EN", "en"), (" ", None)])
def test_codes_are_normalised(raw: str, code: str | None) -> None:
    assert normalize(raw) == code


def test_a_code_that_is_not_a_language_is_refused_with_the_served_list() -> None:
    with pytest.raises(LanguageError, match="en, es, fr, de, ja, zh"):
        normalize("español!")


# ------------------------------------------------------------------------------------------- lines
def test_every_fixed_line_exists_in_every_served_language() -> None:
    for key, by_lang in LINES.items():
        assert set(by_lang) == set(SUPPORTED), key
        slots = set(re.findall(r"\{(\w+)\}", by_lang["en"]))
        for lang in FOREIGN:
            assert by_lang[lang], (key, lang)
            assert set(re.findall(r"\{(\w+)\}", by_lang[lang])) == slots, (key, lang)


def _english_lines_of_the_code() -> list[str]:
    """Every fixed English sentence the stages, the router and the handoff service say today."""
    from callwise.calls import survey
    from callwise.calls.call import GREETING
    from callwise.calls.stages import send_offer
    from callwise.calls.stages import survey as survey_stage
    from callwise.calls.stages.answer import APOLOGY
    from callwise.calls.stages.escalate import OFFER
    from callwise.calls.stages.understand import ACKNOWLEDGEMENT, GREETING_REPLY
    from callwise.handoff import service
    from callwise.handoff.escalation import reason_sentence
    from callwise.routing.answerability import REPLIES
    from callwise.routing.resilience import HOLDING_LINE
    from callwise.routing.router import DISCLAIMER, EMPTY_REPLY
    from callwise.routing.text import CODE_POINTER

    contact = {"phone": "+15550100"}
    out = [GREETING, GREETING_REPLY, ACKNOWLEDGEMENT, APOLOGY, OFFER, HOLDING_LINE, DISCLAIMER, EMPTY_REPLY,
           survey.RATING_QUESTION, survey.COMMENT_QUESTION, survey.CLOSING, survey_stage.RETRY_RATING,
           service.KEEPALIVE, service.transfer_message("CW-1042"), service.notified_message("CW-1042"),
           service.callback_message("CW-1042", "9:00 to 18:00 UTC", contact, offline=True),
           service.callback_message("4521", "9:00 to 18:00 UTC", {}, offline=False),
           service.human_joined_message("Sam"), CODE_POINTER, *REPLIES.values(),
           *send_offer.OFFER.values(), *send_offer.SENT.values(), send_offer.NOT_SENT, send_offer.NOT_QUEUED]
    out += [reason_sentence(r) for r in ("explicit_request", "frustration", "billing_dispute", "security_privacy",
                                         "legal_refund", "outage", "repeated_failure", "low_confidence",
                                         "router_failure", "something_new")]
    return out


@pytest.mark.parametrize("lang", FOREIGN)
def test_every_english_line_of_the_code_is_said_in_the_callers_language(lang: str) -> None:
    english = [LINES[k]["en"] for k in LINES if LINES[k]["en"] and "{" not in LINES[k]["en"]]
    for text in _english_lines_of_the_code():
        said = localize(text, lang)
        assert said != text, f"no {lang} line for: {text!r}"
        left = [e for e in english if e in said]
        assert not left, f"English left in the {lang} line for {text!r}: {left}"


def test_slots_keep_the_case_number_and_translate_fixed_slot_words() -> None:
    from callwise.handoff import service

    said = localize(service.callback_message("CW-1042", "9:00 to 18:00 UTC", {"phone": "1"}, offline=False), "es")
    assert said == ("Le he abierto un caso, número de caso C W 1 0 4 2, y un miembro de nuestro equipo de soporte "
                    "le llamará en horario de servicio, 9:00 to 18:00 UTC.")


def test_the_knowledge_bases_own_sentences_are_never_translated() -> None:
    answer = "Your password must be at least 8 characters. Open Settings > Security to change it."
    for lang in FOREIGN:
        assert localize(answer, lang) == answer
    assert localize("Let me check that for you.", "en") == "Let me check that for you."
    assert line("holding", "pt") == LINES["holding"]["en"]  # an unserved language hears English


@pytest.mark.parametrize("lang, text", [
    ("es", "Vale, eso es todo. Adiós."), ("fr", "Merci, au revoir !"), ("de", "Danke, das war's. Tschüss!"),
    ("ja", "ありがとうございました。以上です。"), ("zh", "好的，谢谢，再见。"), ("es", "ok, goodbye"),
])
def test_goodbyes_in_each_language(lang: str, text: str) -> None:
    assert is_goodbye(text, lang)


@pytest.mark.parametrize("lang, text", [
    ("es", "¿Cómo restablezco mi contraseña?"), ("fr", "Bonjour, j'ai un problème de facture"),
    ("de", "Hallo, wie ändere ich meine E-Mail?"), ("ja", "こんにちは"), ("zh", "你好，我有个问题"),
])
def test_questions_are_not_goodbyes(lang: str, text: str) -> None:
    assert not is_goodbye(text, lang)


# ------------------------------------------------------------------------------------- survey ratings
@pytest.mark.parametrize("lang, text, rating", [
    ("es", "cuatro", 4), ("es", "Cuatro de cinco.", 4), ("es", "le doy un 5", 5), ("es", "muy bien", 5),
    ("es", "no muy bien", 2), ("es", "regular", 3), ("es", "fatal", 1), ("es", "ocho sobre diez", 4),
    ("fr", "cinq sur cinq", 5), ("fr", "trois", 3), ("fr", "pas terrible", 2), ("fr", "très bien", 5),
    ("fr", "un sur cinq", 1), ("fr", "quatre étoiles", 4),
    ("de", "vier von fünf", 4), ("de", "sehr schlecht", 1), ("de", "gut", 4), ("de", "geht so", 3),
    ("de", "zwei Sterne", 2),
    ("ja", "5点中4点", 4), ("ja", "四", 4), ("ja", "まあまあ", 3), ("ja", "最悪", 1), ("ja", "星5つ", 5),
    ("zh", "五分之四", 4), ("zh", "四颗星", 4), ("zh", "一般", 3), ("zh", "非常好", 5), ("zh", "很差", 1),
    ("es", "four out of five", 4),  # English is always understood too
])
def test_ratings_in_each_language(lang: str, text: str, rating: int) -> None:
    assert parse_rating(text, lang)[0] == rating


@pytest.mark.parametrize("lang, text", [
    ("fr", "c'était un peu long"),  # "un" is an article here, not a rating of 1
    ("es", "una pregunta más"), ("de", "ein Moment bitte"), ("zh", "一般般吧我不知道"), ("es", "nada"),
])
def test_articles_and_words_that_contain_a_numeral_are_not_ratings(lang: str, text: str) -> None:
    rating, _ = parse_rating(text, lang)
    assert rating != 1


# ------------------------------------------------------------------------------ asking for a person
def test_every_phrase_file_example_matches_its_own_pattern() -> None:
    for lang in FOREIGN:
        rows = phrases.phrases(lang)
        assert rows, lang
        for p in rows:
            assert p.pattern.search(p.example), (lang, p.example)


@pytest.mark.parametrize("lang, text", [
    ("es", "Quiero hablar con una persona"), ("es", "pásame con un agente, por favor"),
    ("fr", "Je voudrais parler à un conseiller"), ("de", "Ich möchte mit einem Mitarbeiter sprechen"),
    ("ja", "オペレーターと話したいです"), ("zh", "我要转人工"),
])
def test_a_request_for_a_person_in_each_language(lang: str, text: str) -> None:
    found = phrases.match(text, lang)
    assert found is not None and found[0] == "explicit_request"


@pytest.mark.parametrize("lang, text", [
    ("es", "¿Cómo cambio el correo de la persona que administra la cuenta?"),
    ("fr", "Comment ajouter une personne à mon équipe ?"), ("de", "Wie lade ich einen Mitarbeiter ins Team ein?"),
    ("ja", "パスワードを変更したいです"), ("zh", "如何重置密码"),
])
def test_questions_about_people_are_not_requests_for_one(lang: str, text: str) -> None:
    assert phrases.match(text, lang) is None


def test_english_has_no_phrase_file_the_english_rules_decide() -> None:
    assert phrases.phrases("en") == () and phrases.phrases("../x") == ()


# ----------------------------------------------------------------------------- stages on real parts
def _turn(deps, org: str, text: str, lang: str, *, session_id: str | None = None):  # type: ignore[no-untyped-def]
    from callwise.calls.context import CallContext, TurnContext, TurnOutcome

    call = CallContext(deps=deps, organization_id=org, session_id=session_id, persist=session_id is not None,
                       language=lang, language_choice=choose(call=lang))
    return TurnContext(call=call, text=text, outcome=TurnOutcome(transcript=text), guarded=text, query=text)


async def test_a_spanish_request_for_a_person_escalates_in_spanish(support_deps, org_id) -> None:
    from callwise.calls.stages.language import AskForPersonInLanguage

    ctx = _turn(support_deps, org_id, "Quiero hablar con una persona, por favor", "es")
    await AskForPersonInLanguage().run(ctx)
    assert ctx.done and ctx.outcome.escalated and ctx.outcome.escalation["reason"] == "explicit_request"
    said = "".join(ctx.spoken)
    assert said.startswith("Por supuesto.") and "support team" not in said


async def test_an_english_call_leaves_the_english_rules_alone(support_deps, org_id) -> None:
    from callwise.calls.stages.language import AskForPersonInLanguage

    ctx = _turn(support_deps, org_id, "Quiero hablar con una persona", "en")
    await AskForPersonInLanguage().run(ctx)
    assert not ctx.done and not ctx.spoken


async def test_the_survey_runs_in_french(support_deps, org_id) -> None:
    from callwise.calls.stages.survey import Goodbye, Survey

    bye = _turn(support_deps, org_id, "Merci, c'est tout. Au revoir.", "fr")
    await Goodbye().run(bye)
    assert bye.call.survey_phase == "rating" and "".join(bye.spoken) == LINES["rating_question"]["fr"]
    rate = _turn(support_deps, org_id, "cinq sur cinq", "fr")
    rate.call = bye.call
    await Survey().run(rate)
    assert rate.call.survey_phase == "comment" and "".join(rate.spoken) == LINES["comment_question"]["fr"]


async def test_a_spanish_question_gets_the_notice_once_then_the_english_answer(support_deps, kb_org) -> None:
    from callwise.calls import SupportCall

    call = SupportCall(support_deps, organization_id=kb_org, session_id=None, persist=False)
    call.ctx.language, call.ctx.language_choice = "es", choose(call="es")
    first = await call.run_turn("¿Cuánto tarda el reembolso en llegar a mi tarjeta? refund")
    notice = LINES["english_docs"]["es"]
    assert first.answer.startswith(notice) and first.sources
    assert first.answer[len(notice):].strip()  # the English sentences follow, as read from the KB
    second = await call.run_turn("¿Y cómo restablezco la contraseña? reset password")
    assert notice not in second.answer


async def test_an_unserved_language_hears_the_english_notice_and_gets_a_case(support_deps, org_id, pg_pool) -> None:
    from callwise.calls import SupportCall

    call = await SupportCall.start(support_deps, organization_id=org_id, room="lang-test", modality="voice")
    call.ctx.language_choice = choose(detected="pt", probability=0.9)
    out = await call.run_turn("Olá, preciso de ajuda com a minha fatura")
    await call.end()
    assert out.answer.startswith(languages.unsupported_notice())
    assert out.escalated and out.escalation["rule"].startswith("unsupported_language")
    stored = await pg_pool.fetchval("select language from sessions where organization_id = $1 and id = $2",
                                    org_id, call.session_id)
    assert stored == "en"


@pytest.mark.parametrize("lang, text, yes", [
    ("es", "Sí, por favor", True), ("es", "no, gracias", False), ("fr", "Oui, d'accord", True), ("fr", "non merci", False),
    ("de", "Ja, gerne", True), ("de", "nein danke", False), ("ja", "はい、お願いします", True), ("ja", "いいえ、結構です", False),
    ("zh", "好的，麻烦你", True), ("zh", "不用了", False), ("en", "yes please", False),  # English: the escalate stage's own
])
def test_accepting_an_offer_in_each_language(lang: str, text: str, yes: bool) -> None:
    assert languages.is_yes(text, lang) is yes


async def test_a_spanish_yes_to_the_offer_of_a_colleague_escalates(support_deps, org_id) -> None:
    from callwise.calls.stages.escalate import EscalateOnWords

    ctx = _turn(support_deps, org_id, "Sí, por favor", "es")
    ctx.call.state.offer_pending = True
    await EscalateOnWords().run(ctx)
    assert ctx.done and ctx.outcome.escalated and ctx.outcome.escalation["reason"] == "explicit_request"


@pytest.mark.parametrize("probs, code, requested", [
    ([("la", 0.477), ("es", 0.146), ("it", 0.1)], "es", None),  # Whisper's Latin on a Spanish caller: Spanish
    ([("th", 0.752), ("de", 0.137), ("en", 0.05)], "de", None),  # unsure of an unserved language: best served
    ([("th", 0.968), ("ja", 0.004)], "en", "th"),  # near certain of an unserved language: the notice and a case
    ([("pt", 0.95), ("es", 0.04)], "en", "pt"),
    ([("en", 0.641), ("th", 0.123)], "en", None),
    ({"zh": 0.6, "yue": 0.3}, "zh", None),
])
def test_detection_takes_the_most_likely_served_language_unless_an_unserved_one_is_near_certain(
        probs: object, code: str, requested: str | None) -> None:
    got = languages.choose_detected(probs)  # type: ignore[arg-type]
    assert (got.code, got.requested, got.source) == (code, requested, "detected")
    assert got.supported is (requested is None)


def test_a_set_language_wins_over_the_probabilities() -> None:
    got = languages.choose_detected([("es", 0.9)], org="fr")
    assert (got.code, got.source) == ("fr", "org")
    assert languages.choose_detected([]).source == "default"


@pytest.mark.parametrize("lang", ["es", "fr", "de", "ja", "zh"])
def test_the_warm_transfer_fallback_and_a_nameless_colleague_are_said_whole_in_the_callers_language(lang: str) -> None:
    from callwise.handoff.warm import WARM_FAILURES, WARM_SLOT_PHRASES, warm_fallback_message

    for what in WARM_FAILURES.values():
        said = languages.localize(warm_fallback_message(
            "9:00 to 18:00 UTC", "a member of our support team will call you back", what), lang)
        assert WARM_SLOT_PHRASES[what][lang] in said and what not in said
        assert languages.SLOT_PHRASES["a member of our support team will call you back"][lang] in said
    joined = languages.localize(languages.line("human_joined", name="A colleague"), lang)
    assert WARM_SLOT_PHRASES["A colleague"][lang] in joined and "A colleague" not in joined
