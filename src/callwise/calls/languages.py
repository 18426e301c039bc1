"""The language of a call, and every fixed line the agent says, in each supported language.

A call's language comes from, in order: the call itself (room metadata, a SIP header), the
organization's setting, the language Whisper detected on the first utterance, else English
(:func:`choose`). It is passed to STT (Deepgram's ``language``; the local multilingual Whisper)
and to TTS (:data:`ESPEAK_VOICES`).

Fixed lines are the agent's own words: the greeting, the holding line, acknowledgements, the
escalation, callback and case sentences, the survey. The stages and the handoff service word them
in English; :func:`localize` turns every English fixed line (or template, with its slots kept)
in a reply into the call's language, sentence by sentence, and leaves every other sentence as it
is. Answers read from the English knowledge base therefore stay English: nothing here pretends to
translate them (the caller is told once, :data:`ENGLISH_DOCS`).

An unsupported language gets :func:`unsupported_notice` (one English sentence naming the served
languages) and a case.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from callwise.handoff.warm import WARM_SLOT_PHRASES

SUPPORTED: tuple[str, ...] = ("en", "es", "fr", "de", "ja", "zh")
DEFAULT = "en"
NAMES: dict[str, str] = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "ja": "Japanese",
                         "zh": "Chinese"}
#: espeak-ng voice per language (``espeak-ng --voices``). Mandarin is ``cmn-latn-pinyin``: the plain ``cmn`` voice
#: turns a character into pinyin with a tone digit and reads that as English ("你" -> "ni three"; ``espeak-ng -v cmn
#: -x 你好``), which no listener, and no Whisper, hears as Chinese
ESPEAK_VOICES: dict[str, str] = {"en": "en-us", "es": "es", "fr": "fr-fr", "de": "de", "ja": "ja",
                                 "zh": "cmn-latn-pinyin"}
#: Deepgram's ``language`` option per language (nova-3 takes these codes)
DEEPGRAM_LANGUAGES: dict[str, str] = {"en": "en-US", "es": "es", "fr": "fr", "de": "de", "ja": "ja", "zh": "zh-CN"}
#: a detected language that callwise does not serve counts only above this probability (below it the call
#: stays on its default); a served language is taken as Whisper's best guess whatever its probability,
#: since synthetic and phone audio give low probabilities to the right language (bench/languages.py)
MIN_DETECTION_PROBABILITY = 0.5

Source = Literal["call", "org", "detected", "default"]


class LanguageError(ValueError):
    """A language code that is not a language callwise knows (the message says which are served)."""


def normalize(code: str | None) -> str | None:
    """``es-ES`` -> ``es``, ``zh-CN``/``cmn``/``zh-Hans`` -> ``zh``, ``EN`` -> ``en``; None for blank."""
    if code is None:
        return None
    c = code.strip().lower().replace("_", "-")
    if not c:
        return None
    base = c.split("-", 1)[0]
    if base in ("cmn", "zho", "chi"):
        return "zh"
    if not re.fullmatch(r"[a-z]{2,3}", base):
        raise LanguageError(f"{code!r} is not a language code; callwise serves {', '.join(SUPPORTED)}")
    return base


def is_supported(code: str | None) -> bool:
    try:
        return normalize(code) in SUPPORTED
    except LanguageError:
        return False


@dataclass(frozen=True)
class LanguageChoice:
    """The call's language and why: ``source`` says who decided; ``detected`` and ``probability``
    are Whisper's guess on the first utterance, when there was one. ``supported`` is False for a
    language callwise does not serve (the call then runs in English, :func:`unsupported_notice`)."""

    code: str
    source: Source
    detected: str | None = None
    probability: float | None = None
    requested: str | None = None  # what was asked or heard, before falling back to a served language

    @property
    def supported(self) -> bool:
        return self.requested is None or self.requested in SUPPORTED

    def as_dict(self) -> dict[str, object]:
        return {"language": self.code, "source": self.source, "detected": self.detected,
                "probability": None if self.probability is None else round(self.probability, 3),
                "supported": self.supported, "requested": self.requested}


def choose(*, call: str | None = None, org: str | None = None, detected: str | None = None,
           probability: float | None = None, default: str = DEFAULT) -> LanguageChoice:
    """The call's language: the call's own override, else the org's, else the detected language
    (a served one; an unserved one only when confident), else ``default``. An unsupported request
    falls back to English with ``requested`` kept."""
    det = normalize(detected) if detected else None
    for source, code in (("call", call), ("org", org)):
        c = normalize(code) if code else None
        if c:
            return LanguageChoice(c if c in SUPPORTED else DEFAULT, source,  # type: ignore[arg-type]
                                  det, probability, None if c in SUPPORTED else c)
    if det in SUPPORTED:
        return LanguageChoice(det, "detected", det, probability)
    if det and (probability is None or probability >= MIN_DETECTION_PROBABILITY):
        return LanguageChoice(DEFAULT, "detected", det, probability, det)
    return LanguageChoice(language_of(default), "default", det, probability)


#: an unserved language Whisper is this sure of is taken as the caller's (notice + case); below it the call runs in
#: the most likely served language. On espeak-ng speech in the five languages, Whisper's top language was an
#: unserved one on 17 of 100 first utterances (Latin, Thai, Italian...), at most 0.97 sure; the best served language
#: was the right one on 70 of 120 with this rule, against 61 of 120 for Whisper's top language (bench/languages.py)
UNSERVED_MIN_PROBABILITY = 0.9


def choose_detected(probabilities: Sequence[tuple[str, float]] | Mapping[str, float], *, call: str | None = None,
                    org: str | None = None) -> LanguageChoice:
    """The call's language from Whisper's probability for every language (``TranscriptionInfo.all_language_probs``):
    the call's or the org's setting first (:func:`choose`), else the most likely served language, unless an
    unserved one is at least :data:`UNSERVED_MIN_PROBABILITY` sure (then English with ``requested`` set)."""
    probs: dict[str, float] = {}
    for code, p in (probabilities.items() if isinstance(probabilities, Mapping) else probabilities):
        try:
            c = normalize(code)
        except LanguageError:
            continue
        if c:
            probs[c] = max(probs.get(c, 0.0), float(p))
    if call or org or not probs:
        return choose(call=call, org=org)
    top = max(probs, key=lambda c: probs[c])
    if top not in SUPPORTED and probs[top] >= UNSERVED_MIN_PROBABILITY:
        return LanguageChoice(DEFAULT, "detected", top, probs[top], top)
    best = max(SUPPORTED, key=lambda c: probs.get(c, 0.0))
    return LanguageChoice(best, "detected", best, probs.get(best, 0.0))


def unsupported_notice() -> str:
    """The one English sentence an unsupported language gets, before a case is opened."""
    served = [NAMES[c] for c in SUPPORTED]
    return (f"Sorry, I can only help in {', '.join(served[:-1])} and {served[-1]}; "
            "I'm passing your call to our support team.")


# ---------------------------------------------------------------------------------------------- lines
#: Every fixed line, keyed; ``{slot}`` marks text carried over as it is (a case number, service hours).
#: The English text is what the stages and the handoff service say (tests/calls/test_languages.py
#: checks each of their constants is here, so a reworded English line is caught).
LINES: dict[str, dict[str, str]] = {
    "greeting": {
        "en": "Hi, thanks for calling support. How can I help you today?",
        "es": "Hola, gracias por llamar a soporte. ¿En qué puedo ayudarle hoy?",
        "fr": "Bonjour, merci d'avoir appelé le support. Comment puis-je vous aider aujourd'hui ?",
        "de": "Hallo, danke für Ihren Anruf beim Support. Wie kann ich Ihnen heute helfen?",
        "ja": "お電話ありがとうございます。サポートです。本日はどのようなご用件でしょうか？",
        "zh": "您好，感谢您致电客服。今天有什么可以帮您？",
    },
    "greeting_reply": {
        "en": "Hello! What can I help you with today?",
        "es": "¡Hola! ¿En qué puedo ayudarle hoy?",
        "fr": "Bonjour ! En quoi puis-je vous aider aujourd'hui ?",
        "de": "Hallo! Womit kann ich Ihnen heute helfen?",
        "ja": "こんにちは。本日はどのようなご用件でしょうか？",
        "zh": "您好！今天有什么可以帮您？",
    },
    "holding": {
        "en": "Let me check that for you.",
        "es": "Permítame comprobarlo.",
        "fr": "Je vérifie cela pour vous.",
        "de": "Einen Moment, ich sehe nach.",
        "ja": "確認いたしますので、少々お待ちください。",
        "zh": "请稍等，我帮您查一下。",
    },
    "acknowledgement": {
        "en": "Thanks, I've noted that. What would you like to know?",
        "es": "Gracias, lo he anotado. ¿Qué le gustaría saber?",
        "fr": "Merci, c'est noté. Que souhaitez-vous savoir ?",
        "de": "Danke, ich habe es notiert. Was möchten Sie wissen?",
        "ja": "ありがとうございます。承知しました。何をお知りになりたいですか？",
        "zh": "谢谢，我已经记下了。您想了解什么？",
    },
    "apology": {
        "en": "I'm sorry, I'm having trouble answering right now.",
        "es": "Lo siento, ahora mismo tengo problemas para responder.",
        "fr": "Je suis désolé, j'ai du mal à répondre pour le moment.",
        "de": "Es tut mir leid, ich kann gerade nicht antworten.",
        "ja": "申し訳ありません。現在、回答に問題が発生しています。",
        "zh": "抱歉，我现在无法回答。",
    },
    "empty_reply": {
        "en": "Sorry, I didn't catch a question. Could you say that again?",
        "es": "Perdone, no he entendido la pregunta. ¿Puede repetirla?",
        "fr": "Pardon, je n'ai pas compris la question. Pouvez-vous répéter ?",
        "de": "Entschuldigung, ich habe keine Frage verstanden. Können Sie das wiederholen?",
        "ja": "申し訳ありません、ご質問を聞き取れませんでした。もう一度お願いできますか？",
        "zh": "抱歉，我没有听清您的问题。可以再说一遍吗？",
    },
    "disclaimer": {
        "en": "I'm not completely sure about this, so please double-check it, or ask me for a person.",
        "es": "No estoy del todo seguro de esto, así que compruébelo, o pídame hablar con una persona.",
        "fr": "Je n'en suis pas tout à fait sûr, alors vérifiez-le, ou demandez-moi une personne.",
        "de": "Ich bin mir dabei nicht ganz sicher; bitte prüfen Sie es nach oder verlangen Sie einen Mitarbeiter.",
        "ja": "これについては確信が持てませんので、ご確認いただくか、担当者をご希望ください。",
        "zh": "我对此不完全确定，请您再核实一下，或者要求转人工。",
    },
    "english_docs": {
        "en": "",
        "es": "Nuestra documentación está en inglés, así que le leeré la respuesta en inglés.",
        "fr": "Notre documentation est en anglais, je vais donc vous lire la réponse en anglais.",
        "de": "Unsere Dokumentation ist auf Englisch, daher lese ich Ihnen die Antwort auf Englisch vor.",
        "ja": "資料は英語のみのため、英語の回答をそのまま読み上げます。",
        "zh": "我们的文档是英文的，所以我会用英文为您读出答案。",
    },
    # survey
    "rating_question": {
        "en": "Before you go: on a scale of one to five, how would you rate the help you got today? Five is excellent.",
        "es": "Antes de irse: en una escala del uno al cinco, ¿cómo valoraría la ayuda que ha recibido hoy? Cinco es excelente.",
        "fr": "Avant de partir : sur une échelle de un à cinq, comment noteriez-vous l'aide reçue aujourd'hui ? Cinq, c'est excellent.",
        "de": "Bevor Sie gehen: Wie bewerten Sie auf einer Skala von eins bis fünf die Hilfe, die Sie heute bekommen haben? Fünf ist ausgezeichnet.",
        "ja": "最後に、本日のサポートを1から5の5段階で評価していただけますか？5が最高です。",
        "zh": "在您离开之前：请用一到五分评价今天得到的帮助，五分是非常好。",
    },
    "retry_rating": {
        "en": "Sorry, I didn't catch that. Could you give me a number from one to five?",
        "es": "Perdone, no lo he entendido. ¿Me puede dar un número del uno al cinco?",
        "fr": "Pardon, je n'ai pas compris. Pouvez-vous me donner un chiffre de un à cinq ?",
        "de": "Entschuldigung, das habe ich nicht verstanden. Können Sie mir eine Zahl von eins bis fünf nennen?",
        "ja": "申し訳ありません、聞き取れませんでした。1から5の数字でお答えいただけますか？",
        "zh": "抱歉，我没听清。可以给我一个一到五之间的数字吗？",
    },
    "comment_question": {
        "en": "Thank you. Is there anything you'd like to tell us about the call?",
        "es": "Gracias. ¿Hay algo que quiera comentarnos sobre la llamada?",
        "fr": "Merci. Souhaitez-vous nous dire quelque chose sur cet appel ?",
        "de": "Danke. Möchten Sie uns noch etwas zu dem Anruf sagen?",
        "ja": "ありがとうございます。今回のお電話について、何かご意見はありますか？",
        "zh": "谢谢。关于这次通话，您还有什么想告诉我们的吗？",
    },
    "closing": {
        "en": "Thanks for your feedback. Goodbye!",
        "es": "Gracias por su opinión. ¡Adiós!",
        "fr": "Merci pour votre avis. Au revoir !",
        "de": "Danke für Ihr Feedback. Auf Wiedersehen!",
        "ja": "ご意見ありがとうございました。失礼いたします。",
        "zh": "感谢您的反馈。再见！",
    },
    # answerability (callwise.routing.answerability.REPLIES), one sentence a line
    "not_in_help_centre": {
        "en": "I don't have that in our help centre.",
        "es": "No tengo esa información en nuestro centro de ayuda.",
        "fr": "Je n'ai pas cette information dans notre centre d'aide.",
        "de": "Dazu habe ich nichts in unserem Hilfe-Center.",
        "ja": "その情報はヘルプセンターにありません。",
        "zh": "我们的帮助中心里没有这方面的内容。",
    },
    "offer_colleague": {
        "en": "Would you like me to pass your question to a colleague?",
        "es": "¿Quiere que pase su pregunta a un compañero?",
        "fr": "Voulez-vous que je transmette votre question à un collègue ?",
        "de": "Soll ich Ihre Frage an einen Kollegen weitergeben?",
        "ja": "ご質問を担当者に引き継ぎましょうか？",
        "zh": "需要我把您的问题转给同事吗？",
    },
    "only_help_centre": {
        "en": "I don't have that: I can only answer questions our help centre covers.",
        "es": "No tengo esa información: solo puedo responder preguntas que cubre nuestro centro de ayuda.",
        "fr": "Je n'ai pas cette information : je ne peux répondre qu'aux questions couvertes par notre centre d'aide.",
        "de": "Dazu habe ich nichts: Ich kann nur Fragen beantworten, die unser Hilfe-Center abdeckt.",
        "ja": "その情報はありません。ヘルプセンターで扱っている質問にのみお答えできます。",
        "zh": "我没有这方面的信息：我只能回答帮助中心涵盖的问题。",
    },
    "automated_assistant": {
        "en": "I'm the automated assistant, so I can only help with questions our help centre covers.",
        "es": "Soy el asistente automático, así que solo puedo ayudar con preguntas que cubre nuestro centro de ayuda.",
        "fr": "Je suis l'assistant automatique, je ne peux donc aider qu'avec les questions couvertes par notre centre d'aide.",
        "de": "Ich bin der automatische Assistent und kann nur bei Fragen helfen, die unser Hilfe-Center abdeckt.",
        "ja": "私は自動アシスタントのため、ヘルプセンターで扱っている質問にのみお答えできます。",
        "zh": "我是自动助手，只能回答帮助中心涵盖的问题。",
    },
    "what_to_know": {
        "en": "What would you like to know?", "es": "¿Qué le gustaría saber?", "fr": "Que souhaitez-vous savoir ?",
        "de": "Was möchten Sie wissen?", "ja": "何をお知りになりたいですか？", "zh": "您想了解什么？",
    },
    "about_product": {
        "en": "Is there something about our product I can help with?",
        "es": "¿Hay algo sobre nuestro producto en lo que pueda ayudarle?",
        "fr": "Puis-je vous aider pour quelque chose concernant notre produit ?",
        "de": "Kann ich Ihnen bei etwas zu unserem Produkt helfen?",
        "ja": "製品について何かお手伝いできることはありますか？",
        "zh": "关于我们的产品，有什么可以帮您的吗？",
    },
    "account_action": {
        "en": "I can't make changes to accounts or billing myself, but I can pass you to a colleague who can.",
        "es": "No puedo hacer cambios en cuentas ni en facturación, pero puedo pasarle con un compañero que sí puede.",
        "fr": "Je ne peux pas modifier les comptes ni la facturation moi-même, mais je peux vous passer un collègue qui le peut.",
        "de": "Ich kann Konten und Abrechnungen nicht selbst ändern, aber ich kann Sie an einen Kollegen weitergeben, der das kann.",
        "ja": "アカウントや請求の変更は私にはできませんが、対応できる担当者におつなぎできます。",
        "zh": "我无法自行修改账户或账单，但可以为您转接能处理的同事。",
    },
    "would_you_like_that": {
        "en": "Would you like that?", "es": "¿Le parece bien?", "fr": "Cela vous convient-il ?",
        "de": "Möchten Sie das?", "ja": "よろしいですか？", "zh": "可以吗？",
    },
    "not_found": {
        "en": "I couldn't find that in our help centre.",
        "es": "No he encontrado eso en nuestro centro de ayuda.",
        "fr": "Je n'ai pas trouvé cela dans notre centre d'aide.",
        "de": "Das habe ich in unserem Hilfe-Center nicht gefunden.",
        "ja": "ヘルプセンターでは見つかりませんでした。",
        "zh": "我在帮助中心没有找到相关内容。",
    },
    "offer_unsure": {
        "en": "I'm not sure I found the right answer — would you like me to pass this to a colleague?",
        "es": "No estoy seguro de haber encontrado la respuesta correcta. ¿Quiere que le pase con un compañero?",
        "fr": "Je ne suis pas sûr d'avoir trouvé la bonne réponse. Voulez-vous que je transmette à un collègue ?",
        "de": "Ich bin nicht sicher, ob ich die richtige Antwort gefunden habe. Soll ich Sie an einen Kollegen weitergeben?",
        "ja": "正しい回答が見つかったか自信がありません。担当者におつなぎしましょうか？",
        "zh": "我不确定找到的答案是否正确。需要我帮您转给同事吗？",
    },
    "case_already_opened": {
        "en": "I've already opened a case for you, {ref}; {promise} during service hours, {hours}.",
        "es": "Ya le he abierto un caso, {ref}; {promise} en horario de servicio, {hours}.",
        "fr": "J'ai déjà ouvert un dossier pour vous, {ref} ; {promise} pendant les heures de service, {hours}.",
        "de": "Ich habe bereits einen Fall für Sie eröffnet, {ref}; {promise} während der Servicezeiten, {hours}.",
        "ja": "すでにケース {ref} を作成済みです。{promise}（対応時間: {hours}）。",
        "zh": "我已经为您创建了案例 {ref}；{promise}，服务时间为 {hours}。",
    },
    "colleague_asked_already": {
        "en": "A colleague from our support team has been asked to join and has your {ref}; they'll be with you as soon as they're free.",
        "es": "Se ha pedido a un compañero de nuestro equipo de soporte que se una, y tiene su {ref}; estará con usted en cuanto quede libre.",
        "fr": "Un collègue de notre équipe de support a été invité à rejoindre l'appel et a votre {ref} ; il sera avec vous dès qu'il sera libre.",
        "de": "Ein Kollege aus unserem Support-Team wurde gebeten dazuzukommen und hat Ihre {ref}; er ist bei Ihnen, sobald er frei ist.",
        "ja": "サポートチームの担当者に参加を依頼済みで、{ref} も共有しています。手が空き次第対応します。",
        "zh": "已请客服团队的同事加入，他们已拿到您的 {ref}；空闲后会马上为您服务。",
    },
    "colleague_with_you": {
        "en": "A colleague is with you on this call now.", "es": "Un compañero está ahora con usted en esta llamada.",
        "fr": "Un collègue est maintenant avec vous sur cet appel.", "de": "Ein Kollege ist jetzt mit Ihnen im Gespräch.",
        "ja": "現在、担当者がこの通話に参加しています。", "zh": "同事现在已经在通话中了。",
    },
    "unconfirmed": {
        "en": "I couldn't confirm that the transfer went through.",
        "es": "No he podido confirmar que la transferencia se haya realizado.",
        "fr": "Je n'ai pas pu confirmer que le transfert a abouti.",
        "de": "Ich konnte nicht bestätigen, dass die Weiterleitung geklappt hat.",
        "ja": "転送が完了したか確認できませんでした。",
        "zh": "我无法确认转接是否成功。",
    },
    "unconfirmed_promise": {
        "en": "If you're not connected in a moment, {promise} during service hours, {hours}.",
        "es": "Si no le conectan en un momento, {promise} en horario de servicio, {hours}.",
        "fr": "Si vous n'êtes pas mis en relation d'ici un instant, {promise} pendant les heures de service, {hours}.",
        "de": "Falls Sie nicht gleich verbunden werden, {promise} während der Servicezeiten, {hours}.",
        "ja": "まもなくつながらない場合は、{promise}（対応時間: {hours}）。",
        "zh": "如果稍后仍未接通，{promise}，服务时间为 {hours}。",
    },
    "code_pointer": {
        "en": "The exact command is written out in the article this comes from, which is easier than following it by ear.",
        "es": "El comando exacto está escrito en el artículo del que sale esta respuesta; es más fácil seguirlo leyendo que de oído.",
        "fr": "La commande exacte est écrite dans l'article d'où vient cette réponse ; c'est plus simple à suivre en le lisant.",
        "de": "Der genaue Befehl steht im Artikel, aus dem das stammt; das ist leichter nachzulesen als nach Gehör.",
        "ja": "正確なコマンドは元の記事に書かれています。耳で聞くより記事を見るほうが簡単です。",
        "zh": "确切的命令写在这段回答出处的文章里，看文章比听更容易。",
    },
    # why a person is needed (callwise.handoff.escalation.reason_sentence)
    "reason_explicit_request": {
        "en": "Of course.", "es": "Por supuesto.", "fr": "Bien sûr.", "de": "Selbstverständlich.",
        "ja": "かしこまりました。", "zh": "好的。",
    },
    "reason_frustration": {
        "en": "I'm sorry this has been so frustrating.",
        "es": "Siento mucho que esto haya sido tan frustrante.",
        "fr": "Je suis désolé que ce soit si frustrant.",
        "de": "Es tut mir leid, dass das so frustrierend war.",
        "ja": "ご不便をおかけして申し訳ありません。",
        "zh": "很抱歉让您这么困扰。",
    },
    "reason_billing_dispute": {
        "en": "A billing specialist needs to look at that charge.",
        "es": "Un especialista en facturación tiene que revisar ese cargo.",
        "fr": "Un spécialiste de la facturation doit examiner ce prélèvement.",
        "de": "Ein Abrechnungsspezialist muss sich diese Belastung ansehen.",
        "ja": "その請求については請求担当の専門スタッフが確認する必要があります。",
        "zh": "这笔费用需要账单专员来核查。",
    },
    "reason_security_privacy": {
        "en": "Account security and privacy matters need our specialist team.",
        "es": "Los asuntos de seguridad y privacidad de la cuenta los lleva nuestro equipo especializado.",
        "fr": "Les questions de sécurité et de confidentialité du compte relèvent de notre équipe spécialisée.",
        "de": "Fragen zur Kontosicherheit und zum Datenschutz bearbeitet unser Spezialistenteam.",
        "ja": "アカウントのセキュリティとプライバシーに関する件は専門チームが対応します。",
        "zh": "账户安全和隐私问题需要我们的专门团队处理。",
    },
    "reason_legal_refund": {
        "en": "That needs a member of our team to review and authorise.",
        "es": "Eso tiene que revisarlo y autorizarlo un miembro de nuestro equipo.",
        "fr": "Cela doit être examiné et autorisé par un membre de notre équipe.",
        "de": "Das muss ein Mitglied unseres Teams prüfen und freigeben.",
        "ja": "その件はチームの担当者による確認と承認が必要です。",
        "zh": "这需要我们团队的成员审核并批准。",
    },
    "reason_outage": {
        "en": "Thanks for reporting this.", "es": "Gracias por avisarnos.", "fr": "Merci de nous l'avoir signalé.",
        "de": "Danke für Ihre Meldung.", "ja": "ご報告ありがとうございます。", "zh": "感谢您的反馈。",
    },
    "reason_repeated_failure": {
        "en": "I'm sorry I haven't been able to solve this for you.",
        "es": "Siento no haber podido resolverle esto.",
        "fr": "Je suis désolé de ne pas avoir pu résoudre cela pour vous.",
        "de": "Es tut mir leid, dass ich das nicht für Sie lösen konnte.",
        "ja": "解決できず申し訳ありません。",
        "zh": "很抱歉没能帮您解决这个问题。",
    },
    "reason_low_confidence": {
        "en": "I'm not certain enough to answer that correctly.",
        "es": "No estoy lo bastante seguro para responder a eso correctamente.",
        "fr": "Je ne suis pas assez sûr pour répondre correctement.",
        "de": "Ich bin mir nicht sicher genug, um das richtig zu beantworten.",
        "ja": "正確にお答えできるほどの確信がありません。",
        "zh": "我没有把握正确回答这个问题。",
    },
    "reason_router_failure": {
        "en": "I'm sorry, I'm having technical trouble answering right now.",
        "es": "Lo siento, ahora mismo tengo problemas técnicos para responder.",
        "fr": "Je suis désolé, j'ai un problème technique pour répondre en ce moment.",
        "de": "Es tut mir leid, ich habe gerade technische Probleme beim Antworten.",
        "ja": "申し訳ありません、現在技術的な問題で回答できません。",
        "zh": "抱歉，我现在遇到技术问题，无法回答。",
    },
    "reason_other": {
        "en": "This needs a member of our support team.",
        "es": "Esto necesita a un miembro de nuestro equipo de soporte.",
        "fr": "Cela nécessite un membre de notre équipe de support.",
        "de": "Dafür brauchen wir ein Mitglied unseres Support-Teams.",
        "ja": "この件はサポートチームの担当者が対応します。",
        "zh": "这需要我们的客服团队来处理。",
    },
    # what the escalator did (callwise.handoff.escalation, callwise.handoff.service)
    "case_recorded": {
        "en": "I've recorded your request for our support team as case number {case}.",
        "es": "He registrado su solicitud para nuestro equipo de soporte con el número de caso {case}.",
        "fr": "J'ai enregistré votre demande pour notre équipe de support sous le numéro de dossier {case}.",
        "de": "Ich habe Ihre Anfrage für unser Support-Team als Fall Nummer {case} erfasst.",
        "ja": "ご依頼をサポートチーム宛てに、ケース番号 {case} で記録しました。",
        "zh": "我已将您的请求记录给客服团队，案例编号为 {case}。",
    },
    "case_not_passed": {
        "en": "I'm sorry, I can't pass this to our support team from here; please contact them directly.",
        "es": "Lo siento, desde aquí no puedo pasar esto a nuestro equipo de soporte; por favor, contacte con ellos directamente.",
        "fr": "Je suis désolé, je ne peux pas transmettre cela à notre équipe de support d'ici ; contactez-la directement.",
        "de": "Es tut mir leid, ich kann das von hier nicht an unser Support-Team weitergeben; bitte wenden Sie sich direkt an das Team.",
        "ja": "申し訳ありません、ここからサポートチームにおつなぎできません。直接お問い合わせください。",
        "zh": "抱歉，我无法从这里转给客服团队，请您直接联系他们。",
    },
    "case_already": {
        "en": "Your request is already recorded for our support team as case number {case}.",
        "es": "Su solicitud ya está registrada para nuestro equipo de soporte con el número de caso {case}.",
        "fr": "Votre demande est déjà enregistrée pour notre équipe de support sous le numéro de dossier {case}.",
        "de": "Ihre Anfrage ist für unser Support-Team bereits als Fall Nummer {case} erfasst.",
        "ja": "ご依頼はすでにケース番号 {case} でサポートチームに記録されています。",
        "zh": "您的请求已记录给客服团队，案例编号为 {case}。",
    },
    "transfer": {
        "en": "I'm transferring you to a member of our support team now.",
        "es": "Le paso ahora con un miembro de nuestro equipo de soporte.",
        "fr": "Je vous transfère maintenant à un membre de notre équipe de support.",
        "de": "Ich verbinde Sie jetzt mit einem Mitglied unseres Support-Teams.",
        "ja": "ただいまサポートチームの担当者におつなぎします。",
        "zh": "我现在为您转接客服团队的成员。",
    },
    "transfer_cut_off": {
        "en": "If we get cut off, your {ref} is on file and we'll get back to you.",
        "es": "Si se corta la llamada, su {ref} queda registrado y le volveremos a contactar.",
        "fr": "Si nous sommes coupés, votre {ref} est enregistré et nous vous recontacterons.",
        "de": "Falls die Verbindung abbricht: Ihre {ref} ist erfasst und wir melden uns bei Ihnen.",
        "ja": "通話が切れた場合も、{ref} は記録されていますので、こちらからご連絡します。",
        "zh": "如果通话中断，您的 {ref} 已存档，我们会再联系您。",
    },
    "notified": {
        "en": "I've asked a colleague from our support team to join this call, and they have your {ref}.",
        "es": "He pedido a un compañero de nuestro equipo de soporte que se una a esta llamada, y tiene su {ref}.",
        "fr": "J'ai demandé à un collègue de notre équipe de support de rejoindre cet appel, et il a votre {ref}.",
        "de": "Ich habe einen Kollegen aus unserem Support-Team gebeten, dem Anruf beizutreten; er hat Ihre {ref}.",
        "ja": "サポートチームの担当者にこの通話への参加を依頼しました。{ref} は共有済みです。",
        "zh": "我已请客服团队的同事加入本次通话，他们已拿到您的 {ref}。",
    },
    "stay_on_line": {
        "en": "Please stay on the line; I'll stay with you until they're here.",
        "es": "Por favor, no cuelgue; me quedo con usted hasta que llegue.",
        "fr": "Restez en ligne, s'il vous plaît ; je reste avec vous jusqu'à son arrivée.",
        "de": "Bitte bleiben Sie dran; ich bleibe bei Ihnen, bis jemand da ist.",
        "ja": "そのままお待ちください。担当者が来るまで私がお付き合いします。",
        "zh": "请不要挂机，在同事加入之前我会一直陪着您。",
    },
    "keepalive": {
        "en": "I'm still finding a colleague for you; thanks for waiting.",
        "es": "Sigo buscando a un compañero para usted; gracias por esperar.",
        "fr": "Je cherche encore un collègue pour vous ; merci de patienter.",
        "de": "Ich suche noch einen Kollegen für Sie; danke für Ihre Geduld.",
        "ja": "引き続き担当者をお探ししています。お待ちいただきありがとうございます。",
        "zh": "我还在为您寻找同事，感谢您的耐心等待。",
    },
    "callback_offline": {
        "en": "Our team is offline right now, so I've opened a case for you, {ref}, and {promise} during service hours, {hours}.",
        "es": "Nuestro equipo no está disponible ahora, así que le he abierto un caso, {ref}, y {promise} en horario de servicio, {hours}.",
        "fr": "Notre équipe n'est pas disponible pour le moment, j'ai donc ouvert un dossier pour vous, {ref}, et {promise} pendant les heures de service, {hours}.",
        "de": "Unser Team ist gerade nicht erreichbar, daher habe ich einen Fall für Sie eröffnet, {ref}, und {promise} während der Servicezeiten, {hours}.",
        "ja": "現在チームは対応時間外のため、ケース {ref} を作成しました。{promise}（対応時間: {hours}）。",
        "zh": "我们的团队目前不在线，所以我已为您创建了案例 {ref}，{promise}，服务时间为 {hours}。",
    },
    "callback": {
        "en": "I've opened a case for you, {ref}, and {promise} during service hours, {hours}.",
        "es": "Le he abierto un caso, {ref}, y {promise} en horario de servicio, {hours}.",
        "fr": "J'ai ouvert un dossier pour vous, {ref}, et {promise} pendant les heures de service, {hours}.",
        "de": "Ich habe einen Fall für Sie eröffnet, {ref}, und {promise} während der Servicezeiten, {hours}.",
        "ja": "ケース {ref} を作成しました。{promise}（対応時間: {hours}）。",
        "zh": "我已为您创建了案例 {ref}，{promise}，服务时间为 {hours}。",
    },
    "fallback": {
        "en": "I'm sorry, {what}, so I've made this a callback instead: {promise} during service hours, {hours}.",
        "es": "Lo siento, {what}, así que lo he convertido en una devolución de llamada: {promise} en horario de servicio, {hours}.",
        "fr": "Je suis désolé, {what}, j'ai donc prévu un rappel : {promise} pendant les heures de service, {hours}.",
        "de": "Es tut mir leid, {what}, daher wird das ein Rückruf: {promise} während der Servicezeiten, {hours}.",
        "ja": "申し訳ありません。{what}ため、折り返しのご連絡に切り替えました。{promise}（対応時間: {hours}）。",
        "zh": "抱歉，{what}，所以改为回电：{promise}，服务时间为 {hours}。",
    },
    "your_ref": {
        "en": "Your {ref}.", "es": "Su {ref}.", "fr": "Votre {ref}.", "de": "Ihre {ref}.",
        "ja": "{ref} です。", "zh": "您的 {ref}。",
    },
    "human_joined": {
        "en": "{name} from our support team has joined and has the details of your call.",
        "es": "{name}, de nuestro equipo de soporte, se ha unido y tiene los detalles de su llamada.",
        "fr": "{name}, de notre équipe de support, a rejoint l'appel et connaît les détails de votre demande.",
        "de": "{name} aus unserem Support-Team ist dabei und kennt die Details Ihres Anrufs.",
        "ja": "サポートチームの {name} が参加しました。お電話の内容は共有済みです。",
        "zh": "客服团队的 {name} 已加入，并已了解您的通话详情。",
    },
    "hand_over": {
        "en": "I'll hand over to them now.", "es": "Le dejo con ellos.", "fr": "Je vous laisse avec eux.",
        "de": "Ich übergebe jetzt.", "ja": "それでは担当者に代わります。", "zh": "现在由他们为您服务。",
    },
    "already_passed": {
        "en": "I've already passed your call to our support team.",
        "es": "Ya he pasado su llamada a nuestro equipo de soporte.",
        "fr": "J'ai déjà transmis votre appel à notre équipe de support.",
        "de": "Ich habe Ihren Anruf bereits an unser Support-Team weitergegeben.",
        "ja": "お電話はすでにサポートチームに引き継いでいます。",
        "zh": "我已经把您的通话转给了客服团队。",
    },
    # the offer to send a command the voice answer left out (callwise.calls.stages.send_offer)
    "offer_sms_command": {
        "en": "Would you like me to text you the exact command?",
        "es": "¿Quiere que le envíe el comando exacto por SMS?",
        "fr": "Voulez-vous que je vous envoie la commande exacte par SMS ?",
        "de": "Soll ich Ihnen den genauen Befehl per SMS schicken?",
        "ja": "正確なコマンドをSMSでお送りしましょうか？",
        "zh": "需要我把确切的命令用短信发给您吗？",
    },
    "offer_email_command": {
        "en": "Would you like me to email you the exact command?",
        "es": "¿Quiere que le envíe el comando exacto por correo electrónico?",
        "fr": "Voulez-vous que je vous envoie la commande exacte par e-mail ?",
        "de": "Soll ich Ihnen den genauen Befehl per E-Mail schicken?",
        "ja": "正確なコマンドをメールでお送りしましょうか？",
        "zh": "需要我把确切的命令通过邮件发给您吗？",
    },
    "sent_sms": {
        "en": "I've sent it to you by text message.", "es": "Se lo he enviado por SMS.",
        "fr": "Je vous l'ai envoyée par SMS.", "de": "Ich habe ihn Ihnen per SMS geschickt.",
        "ja": "SMSでお送りしました。", "zh": "我已经用短信发给您了。",
    },
    "sent_email": {
        "en": "I've sent it to your email.", "es": "Se lo he enviado a su correo electrónico.",
        "fr": "Je vous l'ai envoyée par e-mail.", "de": "Ich habe ihn an Ihre E-Mail-Adresse geschickt.",
        "ja": "メールでお送りしました。", "zh": "我已经发到您的邮箱了。",
    },
    "not_sent": {
        "en": "Okay, I won't send it.", "es": "De acuerdo, no se lo enviaré.", "fr": "D'accord, je ne l'envoie pas.",
        "de": "In Ordnung, ich schicke ihn nicht.", "ja": "承知しました。お送りしません。", "zh": "好的，我就不发了。",
    },
    "not_queued": {
        "en": "Sorry, I couldn't send it just now.", "es": "Lo siento, ahora mismo no he podido enviarlo.",
        "fr": "Désolé, je n'ai pas pu l'envoyer pour le moment.", "de": "Entschuldigung, ich konnte ihn gerade nicht senden.",
        "ja": "申し訳ありません、ただいまお送りできませんでした。", "zh": "抱歉，我现在没能发送。",
    },
    # a silent caller (callwise.agent.line): after 30 s, then after 60 s before the call ends
    "still_there": {
        "en": "Are you still there?",
        "es": "¿Sigue ahí?",
        "fr": "Êtes-vous toujours là ?",
        "de": "Sind Sie noch da?",
        "ja": "もしもし、まだお電話つながっていますか？",
        "zh": "您好，您还在线吗？",
    },
    "away_goodbye": {
        "en": "I haven't heard from you, so I'll end the call now. Please call back any time. Goodbye!",
        "es": "No le oigo, así que voy a terminar la llamada. Llámenos cuando quiera. ¡Adiós!",
        "fr": "Je ne vous entends plus, je vais donc terminer l'appel. N'hésitez pas à rappeler. Au revoir !",
        "de": "Ich höre nichts mehr von Ihnen, daher beende ich den Anruf jetzt. Rufen Sie gern wieder an. Auf Wiederhören!",
        "ja": "お声が確認できないため、お電話を終了いたします。またいつでもお電話ください。失礼いたします。",
        "zh": "没有听到您的声音，我将结束通话。欢迎随时再来电。再见！",
    },
    "transfer_under_way": {
        "en": "Your transfer to our support team is under way.",
        "es": "Su transferencia a nuestro equipo de soporte está en curso.",
        "fr": "Votre transfert vers notre équipe de support est en cours.",
        "de": "Ihre Weiterleitung an unser Support-Team läuft.",
        "ja": "サポートチームへの転送を進めています。",
        "zh": "正在为您转接客服团队。",
    },
}

#: slot phrases that are themselves fixed wording (the promise of a callback, a ticket reference)
SLOT_PHRASES: dict[str, dict[str, str]] = {
    "a member of our support team will call you back": {
        "es": "un miembro de nuestro equipo de soporte le llamará", "fr": "un membre de notre équipe de support vous rappellera",
        "de": "ein Mitglied unseres Support-Teams ruft Sie zurück", "ja": "サポートチームの担当者から折り返しお電話します",
        "zh": "客服团队的成员会给您回电"},
    "a member of our support team will email you": {
        "es": "un miembro de nuestro equipo de soporte le escribirá", "fr": "un membre de notre équipe de support vous écrira",
        "de": "ein Mitglied unseres Support-Teams schreibt Ihnen", "ja": "サポートチームの担当者からメールでご連絡します",
        "zh": "客服团队的成员会给您发邮件"},
    "a member of our support team will follow up": {
        "es": "un miembro de nuestro equipo de soporte le contactará", "fr": "un membre de notre équipe de support vous recontactera",
        "de": "ein Mitglied unseres Support-Teams meldet sich", "ja": "サポートチームの担当者からご連絡します",
        "zh": "客服团队的成员会跟进"},
}
# the warm transfer's "what went wrong" (also the cold transfer's "our colleague's line was busy" and "no one could
# pick up in time") and "A colleague" for a person who joined without a name; the handoff package words them
SLOT_PHRASES.update(WARM_SLOT_PHRASES)
_REF = re.compile(r"^(ticket|case) number (.+)$")
_REF_WORDS = {"ticket": {"es": "número de ticket", "fr": "numéro de ticket", "de": "Ticketnummer", "ja": "チケット番号",
                         "zh": "工单编号"},
              "case": {"es": "número de caso", "fr": "numéro de dossier", "de": "Fallnummer", "ja": "ケース番号",
                       "zh": "案例编号"}}

ENGLISH_DOCS = "english_docs"


def language_of(code: str | None) -> str:
    """A served language code for ``code`` (English for anything else)."""
    try:
        c = normalize(code)
    except LanguageError:
        return DEFAULT
    return c if c in SUPPORTED else DEFAULT


def line(key: str, language: str = DEFAULT, **slots: str) -> str:
    """The fixed line ``key`` in ``language`` (English when the language is not served)."""
    if key not in LINES:
        raise KeyError(f"no fixed line {key!r}")
    text = LINES[key].get(language_of(language)) or LINES[key][DEFAULT]
    return text.format(**slots) if slots else text


# ------------------------------------------------------------------------------------------ localize
#: what a slot may hold, so a template never swallows an answer's own sentence ("Your password ...")
_SLOT_RX = {
    "case": r"[A-Z0-9][A-Z0-9 -]{0,40}?",
    "ref": r"(?:ticket number \d[\d ]{0,30}?|case number [A-Z0-9][A-Z0-9 -]{0,40}?)",
    "promise": r"a member of our support team will (?:call you back|email you|follow up)",
    "hours": r"[^.!?]{1,80}?",
    "what": r"[^,.!?]{1,80}?",
    "name": r"[^,.!?]{1,60}?",
}


@lru_cache(maxsize=1)
def _templates() -> list[tuple[str, re.Pattern[str]]]:
    """English lines as patterns (slots capture anything), longest first so a whole line wins."""
    out = []
    for key, by_lang in LINES.items():
        en = by_lang[DEFAULT]
        if not en:
            continue
        parts = re.split(r"(\{\w+\})", en)
        rx = "".join(f"(?P<{p[1:-1]}>{_SLOT_RX.get(p[1:-1], '[^.!?]+?')})" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts)
        out.append((key, re.compile(rx)))
    out.sort(key=lambda kv: -len(LINES[kv[0]][DEFAULT]))
    return out


def _slot(value: str, language: str) -> str:
    v = value.strip()
    if v in SLOT_PHRASES:
        return SLOT_PHRASES[v].get(language, v)
    if m := _REF.match(v):
        return f"{_REF_WORDS[m.group(1)].get(language, m.group(1) + ' number')} {m.group(2)}"
    return value


def localize(text: str, language: str) -> str:
    """``text`` with every English fixed line in it said in ``language``; other words untouched.

    Lines are found whole (a reply may join several: the reason, then what was done), from the
    longest English line down; what is left between them stays as it was.
    """
    lang = language_of(language)
    if lang == DEFAULT or not text.strip():
        return text
    out: list[str] = []
    rest = text
    while rest:
        best: tuple[int, int, str] | None = None  # (start, end, replacement)
        for key, rx in _templates():
            m = rx.search(rest)
            if m is None or (best is not None and m.start() >= best[0]):
                continue
            target = LINES[key].get(lang) or LINES[key][DEFAULT]
            slots = {k: _slot(v, lang) for k, v in m.groupdict().items()}
            best = (m.start(), m.end(), target.format(**slots) if slots else target)
        if best is None:
            out.append(rest)
            break
        out.append(rest[:best[0]])
        out.append(best[2])
        rest = rest[best[1]:]
    return "".join(out)


# ------------------------------------------------------------------------------------------- goodbye
_GOODBYE: dict[str, re.Pattern[str]] = {
    "en": re.compile(
        r"\b(?:that'?s all|that is all|that'?s everything|that'?s it for (?:now|today)|nothing else|"
        r"no (?:more|other|further) questions|good ?bye|bye(?: bye)?|have a (?:good|nice|great) (?:day|one))\b",
        re.IGNORECASE),
    "es": re.compile(r"\b(?:adi[oó]s|hasta luego|hasta pronto|chao|chau|eso es todo|nada m[aá]s|"
                     r"no tengo m[aá]s preguntas|ya est[aá]|que tenga un buen d[ií]a)\b", re.IGNORECASE),
    "fr": re.compile(r"(?:\bau revoir\b|\bc'est tout\b|\brien d'autre\b|\bbonne (?:journ[ée]e|soir[ée]e)\b|"
                     r"\bpas d'autres? questions?\b|\b[àa] bient[ôo]t\b)", re.IGNORECASE),
    "de": re.compile(r"\b(?:auf wiedersehen|auf wiederh[öo]ren|tsch[üu]ss|das war'?s|das ist alles|"
                     r"nichts weiter|keine weiteren fragen|sch[öo]nen tag)\b", re.IGNORECASE),
    "ja": re.compile(r"(?:さようなら|以上です|それだけです|失礼します|ほかにはありません|他にはありません)"),
    "zh": re.compile(r"(?:再见|拜拜|就这些|没有别的问题|没有其他问题|没别的了)"),
}


def is_goodbye(text: str, language: str = DEFAULT) -> bool:
    """The caller is closing the call (in the call's language, or in English, which callers mix in)."""
    t = unicodedata.normalize("NFC", text[:2000])
    lang = language_of(language)
    return bool(_GOODBYE[lang].search(t) or (lang != DEFAULT and _GOODBYE[DEFAULT].search(t)))


# ----------------------------------------------------------------------------------------------- yes
_YES: dict[str, re.Pattern[str]] = {
    "es": re.compile(r"^\W*(?:s[ií]|claro|vale|de acuerdo|por favor|adelante|perfecto|bueno)\b", re.IGNORECASE),
    "fr": re.compile(r"^\W*(?:oui|d'accord|ok|volontiers|s'il vous pla[iî]t|bien s[uû]r|allez-y)\b", re.IGNORECASE),
    "de": re.compile(r"^\W*(?:ja|gerne|gern|okay|ok|bitte|klar|natürlich|einverstanden)\b", re.IGNORECASE),
    "ja": re.compile(r"^\W*(?:はい|お願いします|おねがいします|ええ|うん|そうしてください)"),
    "zh": re.compile(r"^\W*(?:是的|好的|好|可以|行|麻烦你|请)"),
}
_NO: dict[str, re.Pattern[str]] = {
    "es": re.compile(r"\bno\b", re.IGNORECASE), "fr": re.compile(r"\bnon\b", re.IGNORECASE),
    "de": re.compile(r"\b(?:nein|nicht)\b", re.IGNORECASE), "ja": re.compile(r"いいえ|結構です|大丈夫です"),
    "zh": re.compile(r"不用|不要|不了|不是"),
}


def is_yes(text: str, language: str) -> bool:
    """The caller accepts an offer ("sí, por favor", "oui", "はい、お願いします") in the call's language;
    English is ``callwise.calls.stages.escalate.is_yes``. False for English and unserved languages."""
    lang = language_of(language)
    if lang not in _YES:
        return False
    t = unicodedata.normalize("NFC", text[:500])
    return bool(_YES[lang].search(t)) and not _NO[lang].search(t)
