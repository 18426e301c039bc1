"""The escalation word rules: named pattern lists over a customer's turn, as speech to text writes it.

Every pattern is linear in the text (no nested unbounded repetition; spans are bounded), and a
rule reads at most ``MAX_RULE_CHARS`` characters of a turn (its head and tail), so a pasted
100 kB turn costs the same as a long spoken one. ``callwise.handoff.escalation`` decides with them.
"""

from __future__ import annotations

import re

#: a rule reads at most this many characters of one turn: the first ``_HEAD`` and the last
#: ``MAX_RULE_CHARS - _HEAD`` (30 s of speech is about 450 characters)
MAX_RULE_CHARS = 2000
_HEAD = 1500


def rule_text(text: str) -> str:
    """The part of a turn the rules read: all of it up to ``MAX_RULE_CHARS``, else head and tail."""
    if len(text) <= MAX_RULE_CHARS:
        return text
    return text[:_HEAD] + " ... " + text[len(text) - (MAX_RULE_CHARS - _HEAD):]


def _rx(*patterns: str) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


_S = r"[^.?!]{0,40}?"  # a bounded stretch within one sentence
_ME = r"(?:my|our)"
_SOMEONE = r"(?:someone|somebody|a stranger|a hacker|hackers)"
SECURITY = _rx(
    r"\b(?:been |was |got |were |is |are )?hacked\b|\bhackers?\b",
    r"\bcompromised\b",
    r"\bunauthori[sz]ed (?:access|login|log-?in|sign-?in|user|person)",
    rf"\b{_SOMEONE}(?: else)?{_S}\b(?:logged in|signed in|log in|got in(?:to)?|into {_ME} account|broke in"
    r"|stole|impersonat|trying to (?:get in|log in|access|hack)|outside (?:our|my) (?:company|org|team)"
    r"|(?:been |is )?(?:reading|looking (?:at|through)|going through|accessing) (?:my|our) (?:private|personal))",
    r"\b(?:ex-employee|former (?:employee|colleague|contractor|staff)|someone who left)\b" + _S
    + r"\b(?:access|log ?in|logged in|sign in|signed in)",
    r"\b(?:stolen|leaked|phished) (?:password|credentials|login|account|data|api key)",
    r"\b(?:password|credentials|login|api key) (?:was|were|got|has been|have been) (?:stolen|leaked|phished)",
    r"\bstole (?:my|our) (?:login|password|account|identity|credentials|data)",
    r"\bphishing\b|\bidentity theft\b|\bimpersonat(?:ing|es|ed) (?:me|us|our)\b",
    r"\b(?:it |that )?(?:wasn't|was not|weren't|were not) (?:me|us)\b",
    r"\bdata (?:breach|leak)\b|\b(?:been|was|had|there'?s been) an? (?:security |data )?breach\b|\bin a breach\b",
    r"\b(?:was|were|is|are|been|got) (?:publicly )?exposed\b|\b(?:data|document|file|files|records?)\b[^.?!]{0,40}?"
    r"\b(?:is|are|was|were) (?:now )?public\b",
    r"\b(?:delete|erase|remove|wipe)\b[^.?!]{0,30}?\b(?:personal (?:data|information|info|details)"
    r"|(?:data|information|info) (?:you (?:have|hold|keep|store)|about me|on me))",
    r"\b(?:delete|erase|remove|wipe) (?:all )?(?:of )?my (?:personal )?(?:data|information|info)\b"
    r"(?! exports?\b| files?\b| sets?\b| tables?\b| sources?\b)",
    r"\b(?:gdpr|ccpa|data subject|subject access|privacy) (?:request|deletion|erasure)\b|\bunder (?:the )?(?:gdpr|ccpa)\b"
    r"|\bdsar\b",
    r"\bright to be forgotten\b",
    r"\b(?:request|get|send me|want) a copy of (?:all )?(?:the |my )?(?:personal )?(?:data|information)"
    r" (?:you (?:have|hold|keep|store)|about me|on me)\b",
    r"\b(?:changed|reset|turned off|disabled|removed|deleted)\b[^.?!]{0,40}?\b(?:i|we) (?:didn't|did not|never) "
    r"(?:do|change|ask for|request) (?:that|it|this)\b",
    r"\b(?:messages?|emails?|posts?|comments?|views?|logins?|log-?ins|sessions?|edits?|downloads?|exports?)\b"
    r"[^.?!]{0,40}?\b(?:i|we) (?:didn't|did not|never) (?:write|send|sent|post|make|made|do|did|start|started)\b",
    r"\b(?:laptop|phone|computer|device|tablet|ipad|mac|macbook)\b[^.?!]{0,20}?\b(?:was|got|has been|were) stolen\b"
    r"|\bstole (?:my|our) (?:laptop|phone|computer|device|tablet)\b",
    r"\b(?:token|api key|key|secret|password|credentials)s? (?:was |were |got |has been |have been |may have )?"
    r"(?:leaked|exposed|stolen|compromised)\b|\bleaked (?:our|my|the) (?:api )?(?:token|key|secret|password)s?\b",
    r"\b(?:a |an )?(?:user|account|member|person)\b[^.?!]{0,20}?\b(?:nobody|no one|none of us) (?:knows|recogni[sz]es)\b",
    r"\bwhat (?:personal )?(?:data|information) (?:do )?you (?:hold|have|keep|store) (?:about|on) me\b",
    r"\b(?:didn't|did not|never) consent\b|\bsharing my (?:data|information|details) with\b",
    r"\bpersonal (?:data|information) (?:was|is|has been|got) (?:shared|sold|exposed|leaked)",
    r"\bprivacy (?:concern|issue|complaint|violation)",
    r"\breport (?:a |an )?(?:security )?(?:vulnerability|exploit|security (?:issue|hole|bug))"
    r"|\bfound (?:a |an )?(?:security )?(?:vulnerability|exploit|security (?:issue|hole|bug))",
    r"\b(?:reset|login|log-?in|verification|security|2fa|two-factor|sign-?in) (?:emails?|codes?|texts?|messages?|requests?)"
    r"[^.?!]{0,25}?\b(?:didn't|did not|never) (?:ask|request)",
)
_LAWYER = r"(?:lawyers?|attorneys?|solicitors?|legal (?:team|department|counsel))"
LEGAL_REFUND = _rx(
    rf"\b(?:my|our) {_LAWYER} (?:will|is going to|are going to|'ll|is gonna|are gonna|(?:is|are|will be) in touch)",
    rf"\b(?:talk|speak|going|get|getting|call|calling|contact|contacting|involve|involving|hire|consult|consulting)"
    rf" (?:to |with )?(?:my|our|a) {_LAWYER}\b",
    r"\blawsuit\b|\blitigation\b|\bsuing\b|\bsue (?:you|your|orbitly|them|the company)\b"
    r"|\b(?:going to|gonna|will|'ll|we'll|i'll|to) sue\b",
    r"\blegal (?:action|proceedings|steps)\b|\bbreach of contract\b|\bsmall claims\b|\b(?:take|taking) (?:you|this|them) to court\b",
    r"\bombudsman\b|\bconsumer (?:protection|law|rights)\b|\btrading standards\b|\bbetter business bureau\b",
    r"\b(?:i'm|i am|we're|we are) (?:legally )?entitled to (?:a |my |our )?(?:full )?refund\b",
    r"\bformal(?:ly)? complain",
    r"\b(?:i|we)\b[^.?!]{0,25}?\b(?:file|lodge|make|submit|raise|register) an? (?:official |formal )?complaint",
    r"\b(?:i|we) (?:want|need|demand|expect|would like|'d like|am asking for|are asking for)"
    r"(?: to get| to have)? (?:a |my |our |the |an? )?(?:full |partial |immediate )?refund\b",
    r"\brefund (?:me|us|the|my|our|it|this|that)\b",
    r"(?:^|[.!?]\s+|\bplease )(?:please )?(?:process|issue|give|send|do) (?:me |us )?(?:a |my |our |the )?(?:full |partial )?refund\b",
    r"\breimburse (?:me|us)\b|\b(?:want|need|demand|expect) (?:to be )?reimbursed\b",
    rf"\b(?:escalat\w*|tak\w*|rais\w*|refer\w*|pass\w*) (?:this|it|the matter) (?:to|with) (?:my|our) {_LAWYER}",
    r"\b(?:can|could|would|will) you (?:please |just )?(?:process|issue|give|send|do|authori[sz]e|approve) "
    r"(?:me |us )?(?:a |my |our |the )?(?:full |partial )?refund",
    r"\b(?:want|need|demand|like|expect|get) (?:my|our) money back\b|\bgive (?:me|us) (?:my|our) money back\b",
    r"\bcharge ?back\b",
)
#: one group: its alternatives must not leak into the patterns that embed it (they did, so any
#: mention of "your support team" or "customer service" read as a request for a human)
_HUMAN = (r"(?:(?:real |live |actual )?(?:customer (?:service|support) |support |sales |billing )?"
          r"(?:human being|human|person|people|agent|representative|rep|manager|supervisor|operator|colleague"
          r"|somebody|someone|anybody|anyone|member of (?:staff|your team|the team)|staff member)s?"
          r"|customer (?:service|support|care)\b|your (?:support|sales|billing) (?:team|department|people)"
          r"|(?:the )?(?:support|sales|billing) department)")
EXPLICIT = _rx(
    rf"\b(?:speak|talk|chat|speaking|talking)(?: directly)? (?:to|with) (?:a |an |the |your |some |one of your )?{_HUMAN}\b",
    r"\b(?:real|live|actual) (?:human|person|agent|people)\b(?! handoffs?\b| feature| chat widget| routing)",
    rf"\b(?:get|connect|transfer|put|hand|pass|switch) (?:me|us) (?:to|through to|with|over to|on to|in touch with) "
    rf"(?:a |an |the |your |one of your )?{_HUMAN}\b",
    r"\b(?:get|give|find) me (?:a |an |some |your )?(?:human|person|agent|representative|rep|manager|supervisor|operator"
    r"|someone|somebody)\b(?! seats?\b| licen[cs]es?\b| roles?\b| accounts?\b| access\b| views?\b)",
    r"\b(?:i want|i need|i'd like|i would like|let me have) (?:a |an |the |your )?(?:human|person|agent|representative"
    r"|manager|supervisor|operator)\b(?! seats?\b| licen[cs]es?\b| roles?\b| accounts?\b| access\b| views?\b"
    r"| to (?:be|have|see|approve))",
    r"\b(?:is there|are there) (?:a |an |any )?(?:human|person|real person|agent|anybody|anyone|somebody|someone)\b"
    r"[^.?!]{0,30}?\b(?:talk|speak|help)",
    r"\b(?:reach|contact|call) (?:a |an )?(?:human|real person|live person|live agent|support agent)\b",
    r"\bescalate (?:this|me|my|it)\b",
    r"\b(?:human|person|agent|representative|operator|rep),? please\b",
    r"\bput (?:a |an )?(?:human|person|agent|manager|supervisor|representative) on\b",
    r"\b(?:get|have) (?:a |an |the |your )?(?:supervisor|manager|human|person|agent|representative) on the (?:line|phone|call)\b",
    r"(?:^|[.!?,]\s+)(?:a |an )?(?:human|person|real person|agent|representative|operator)[.!?]?\s*$",
    r"\bno more bots?\b|\b(?:don't|do not) want to (?:talk|speak) to (?:a |the |your )?(?:bot|robot|machine|computer)\b"
    r"|\bnot (?:a |the )?(?:bot|robot|machine|computer|the assistant)\b",
    r"\b(?:someone|somebody|a person|an agent)\b[^.?!]{0,30}?\bcall (?:me|us)\b",
    rf"\b(?:be |get )?transferred (?:to|over to) (?:a |an |the |your )?{_HUMAN}",
    rf"\b(?:be |get |been )?connected (?:to|with) (?:a |an |the |your |some )?{_HUMAN}",
    r"\b(?:a|an|some) (?:real )?(?:human|person|human being) (?:to )?(?:look at|check|review|handle|deal with|sort)\b",
    rf"\b(?:have|get) a word with (?:a |an |the |your )?{_HUMAN}",
    r"\b(?:get|put) (?:someone|somebody|a person|a human|an agent) on the (?:phone|line)\b",
    rf"\bpass (?:me|us) (?:on|over) to (?:a |an |the |your )?{_HUMAN}",
    r"\b(?:deal|speak|talk) with a human being\b|\b(agent|representative|operator|human)[,.]? \1\b",
)
_DOWN_SUBJECT = (r"(?:service|site|website|web site|app|platform|system|systems|server|servers|api|dashboard|orbitly"
                 r"|everything|it|login|sign-?in|sync|huddles?|workspace)")
_EVERYONE = (r"(?:anyone|everyone|everybody|anybody|all of us|us all|any of us|our whole|the whole|our entire|the entire"
             r"|all our|our (?:team|company|office|org|organi[sz]ation))")
OUTAGE = _rx(
    r"\b(?:is there|are (?:you|you guys|y'all) having|there'?s|there is|having|seeing|reporting) (?:an? |some )?"
    r"(?:kind of )?(?:outage|incident)\b(?! reports?\b)",
    r"\boutage (?:right now|today|at the moment|again|going on)\b",
    rf"\b(?:is|are|was) (?:the |your |orbitly'?s? )?{_DOWN_SUBJECT} (?:completely |totally |still |all )?down\b",
    rf"\b{_DOWN_SUBJECT}(?:'s| is| are| has been| have been| went| has gone| seems| seem| looks| keeps going)?"
    r"(?: to be| like it'?s| like)?(?: completely| totally| all)? down\b(?! for maintenance| to\b)",
    r"\b(?:working|loading|broken|down|failing|stopped|timing out|errors?|crashing)\b[^.?!]{0,25}?\bfor "
    + _EVERYONE + r"\b",
    r"\b(?:nobody|no one|none of us|none of our (?:team|users|staff))\b[^.?!]{0,25}?\b(?:can|could|is able to|are able to)"
    r" (?:log ?in|sign in|access|connect|reach|load|use|open)",
    r"\b(?:is|are) (?:orbitly|your (?:service|servers?|system|platform|api|site|app)|the (?:service|app|site|api)) "
    r"having (?:problems|issues|trouble|an outage|an incident)\b|\b(?:are|is) (?:you|you guys|y'all|orbitly)(?: all)? down\b",
    r"\bevery (?:single )?(?:request|call|page|endpoint)\b[^.?!]{0,40}?\b(?:fail|failing|fails|errors?|times? out|timing out)\b",
    r"\b(?:error|errors|failing|down|broken)\b[^.?!]{0,30}?\bfor all (?:of )?(?:our |the |my )?(?:users|members|people|staff)\b",
    r"\bservice unavailable\b|\b50[234]s?\b(?: errors?)?|\bgateway time-?out\b",
    r"\beverything(?:'s| is) (?:timing out|failing|broken|down|erroring|erroring out)\b",
    r"\b(?:won't|will not|doesn't|does not|isn't|is not) (?:load|open|work|connect|start|sync)(?:ing)?(?: at all)?\b[^.?!]{0,20}?\bfor "
    + _EVERYONE + r"\b",
    r"\b(?:across|for) all (?:of )?our (?:services|users|accounts|teams|offices)\b|\ball (?:of )?our users (?:are|can't|cannot)\b",
    r"\b(?:a |an )?(?:problem|issue|outage) with your (?:service|servers?|system|platform|api|site)\b",
    r"\b(?:something|anything) (?:wrong|going on|up) with (?:your|the) (?:servers?|service|system|platform|api|site)\b",
    r"\b(?:wrong|problem|issue|going on|outage) (?:on|at) your (?:end|side)\b",
    r"\b(?:errors?|failing|fails|timing out|times out)\b[^.?!]{0,30}?\b(?:on|for) every (?:single )?(?:request|page|call|endpoint)\b",
)
BILLING_CUE = _rx(
    r"\bdisput(?:e|es|ed|ing)\b", r"\bover-?charg",
    r"\b(?:charged|billed|charging|billing) (?:us |me )?(?:twice|double|two times|three times)\b"
    r"|\b(?:charged|billed)\b[^.?!]{0,40}?\b(?:twice|double|two times|three times)\b",
    r"\bdouble[- ](?:charged|billed|charge)", r"\bwrong(?:ly)? (?:charge|charged|amount|bill|billed|invoice)",
    r"\bincorrect (?:charge|amount|bill|invoice)", r"\bunauthori[sz]ed (?:charge|payment|transaction)",
    r"\b(?:didn't|did not|never) (?:authori[sz]ed?|approved?|agreed? to|sign(?:ed)? up for|ask(?:ed)? for|order(?:ed)?)\b",
    r"\bshould(?:n't| not) have (?:been (?:charged|billed)|happened)\b", r"\bcharged (?:me |us )?for\b",
    r"\b(?:charge|charged|billed|bill|invoice|payment|renewal)\b[^.?!]{0,80}?\b(?:not right|mistake|error|wrong)\b",
    r"\bwhy (?:was i|were we|am i|are we|did you) (?:being )?(?:charged|billed|charge|bill)\b",
    r"\b(?:don't|do not|didn't|did not) recogni[sz]e\b", r"\bwithout (?:asking|permission|my consent|our consent|approval)\b",
    r"\btook\b[^.?!]{0,30}?\bfrom (?:my|our)\b",
    r"\b(?:not|isn't|is not|don't think (?:it'?s|that'?s|is)) (?:correct|right)\b|\bduplicate (?:payment|charge|invoice)s?\b"
    r"|\b(?:reversed|reverse (?:it|that|the charge))\b",
    r"\brefund\b",
    r"\bcontest(?:ing|ed)?\b|\b(?:two|2|duplicate|identical|double) (?:identical |duplicate )?(?:charges|payments|transactions)\b",
    r"\b(?:charged|billed)\b[^.?!]{0,40}?\b(?:i|we) (?:had )?(?:already )?cancell?ed\b",
)
# --- frustration: (weight, patterns); a span counted at a higher weight is not counted again
FRUSTRATION: list[tuple[int, list[re.Pattern[str]]]] = [
    (3, _rx(
        r"\bi(?:'m| am)(?:,? (?:so|really|absolutely|extremely|very|beyond|getting|just|honestly|now|totally))* "
        r"(?:furious|livid|fuming|pissed(?: off)?|fed up|sick (?:and tired )?of|angry|mad|upset|done with|disgusted)\b",
        r"\b(?:you|you guys|you people|this|this app|your (?:support|team|product|app|service|company|software"
        r"|system|agent|bot))(?:'re| is| are|'s)(?: so| completely| totally| absolutely| just| really)? "
        r"(?:useless|incompetent|pathetic|a joke|garbage|hopeless|clueless|a nightmare|a disgrace)\b",
        r"\b(?:fuck(?:ing|ed)?|f\*+(?:ing)?|bullshit|shit|crap)\b",
        r"\b(?:at|reached) my wits'? end\b|\b(?:at|reached) my wit'?s end\b|\bwhat the fuck\b",
        r"\b(?:complete|total|absolute|utter) (?:waste of (?:my |our )?(?:time|money)|joke|nightmare|disaster)\b",
        r"\bi(?:'ve| have) had it\b|\binfuriat(?:ing|ed)\b|\b(?:you're|you are|this is|stop) wasting (?:my|our) time\b",
        r"\b(?:the )?(?:most useless|worst|most incompetent|most frustrating)\b[^.?!]{0,40}?\b(?:i've|i have) ever\b",
        r"\b(?:a |an )?(?:terrible|awful|horrible|appalling|dreadful) experience\b",
    )),
    (2, _rx(
        r"\bi(?:'m| am)(?:,? (?:so|really|absolutely|extremely|very|beyond|getting|just|honestly|now))* "
        r"(?:frustrated|annoyed|stressed out|losing my patience|not happy|unhappy)\b",
        r"\b(?:useless|pathetic|ridiculous|unacceptable|outrageous|disgusting|incompetent|terrible|awful|horrible"
        r"|garbage|rubbish|nonsense|stupid|hopeless|angry|furious|livid|fuming|disaster|nightmare)\b",
        r"\bwhat the (?:hell|heck)\b|\bfed up\b",
        r"\bworst\b(?! case| part| that can| thing that)",
        r"\bthis is (?:insane|a joke|madness|absurd|crazy)\b|\ba joke\b",
        r"\bwaste of (?:my |our )?(?:time|money)\b|\bfed up\b|\bsick (?:and tired )?of\b",
        r"\bi (?:really |just )?hate (?:this|it|you|your|the way|how)\b",
        r"\b(?:losing|lost) my patience\b|\babout to lose it\b|\bdriving me (?:crazy|nuts|insane|mad)\b",
        r"\bare you (?:kidding|joking|serious)\b|\bwhat(?:'s| is) wrong with (?:you|this)\b",
        r"\b(?:this is|it's|that's) the (?:third|fourth|fifth|sixth|\d+(?:rd|th)) time\b",
    )),
    (1, _rx(
        r"\b(?:annoy(?:ed|ing)|frustrat(?:ed|ing)|disappointed|disappointing|unhelpful)\b",
        r"\b(?:for god'?s sake|for crying out loud|oh my god|seriously\?|unbelievable|ugh+)\b",
        r"\byou people\b|\bcan't believe\b|\bnobody (?:ever )?(?:helps|listens|answers)\b|\bi'm done\b",
        r"\bon hold for\b|\bwaiting for (?:hours|days|weeks|ages)\b|\bnothing works\b",
    )),
]
_CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")
_CAPS_ALLOWED = {"API", "SSO", "URL", "CSV", "PDF", "SMS", "USD", "EUR", "GBP", "FAQ", "VPN", "DNS", "HTTP",
                 "HTTPS", "SAML", "GDPR", "CCPA", "CRM", "IOS", "MFA", "OTP", "PIN", "SLA", "SDK", "CEO",
                 "IBAN", "PII", "EMAIL", "PHONE", "CARD", "SSN", "SCIM", "SOC", "VAT", "ORB", "JSON", "XML"}
_THANKS = re.compile(r"\b(?:thank|thanks|thx|great|awesome|love|perfect|appreciate|amazing|brilliant|cool)\b", re.IGNORECASE)
_EXCLAIM_RUN = re.compile(r"!{2,}")
NOT_RESOLVED = _rx(
    r"\b(?:that|this|it|(?:your )?answer)(?:'s| is)? (?:still )?(?:didn't|did not|doesn't|does not|won't|will not|isn't|is not) "
    r"(?:help|work|fix|solve|answer|change|working|helping|helpful)",
    r"\bstill (?:not|doesn't|does not|isn't|is not|can't|cannot|won't|broken|failing|the same|getting|having|no\b|nothing"
    r"|not working|shows? the same|showing the same)",
    r"\bstill\b[^.?!]{0,20}?\bsame (?:problem|error|issue|thing|screen|message)\b",
    r"\bnot what i(?:'m| am)? (?:asked|asking|meant|mean|need|needed|wanted|want)\b",
    r"\b(?:already|i've|i have|i) tried (?:that|this|it|those|what you said)\b",
    r"\b(?:i've|i have|i) (?:already )?(?:done|did|followed) (?:that|this|it|what you said|the steps)\b"
    r"[^.?!]{0,30}?\b(?:already|nothing|didn't|did not|still|again|times)\b",
    r"\byou(?:'re| are) not (?:listening|understanding|helping|getting it|getting me)\b",
    r"\bthat'?s not (?:it|right|helpful|the problem|what)\b",
    r"\bno,? (?:that'?s|it'?s|that is|it is) (?:wrong|not)\b",
    r"\b(?:that'?s|it'?s|this is) not working either\b|\bsame (?:problem|issue|error|thing) as before\b"
    r"|\bstill happening\b|\b(?:didn't|did not|doesn't|does not) change anything\b|\bnot (?:answering|what i asked)\b",
    r"\b(?:same answer|same thing) (?:as before|again)\b|\byou (?:already )?(?:told|said) (?:me )?that\b"
    r"|\bkeep (?:saying|telling me) the same\b",
    r"\b(?:that|it|this) (?:didn't|did not) do anything\b|\bnothing(?:'s| has) changed\b|\bstill the same\b"
    r"|\bsame (?:error|problem|issue|message)\b[^.?!]{0,10}?$|\bno luck\b",
    r"\b(?:i've|i have|we've|we have|i|we) already\b[^.?!]{0,40}?\b(?:like|as) you (?:said|suggested|told me|asked)\b",
    r"(?:^|[.!?]\s+)(?:nope[,.]?\s+)?(?:tried (?:it|that)|(?:it |that )?(?:didn't|did not) work)\b",
    r"\bthat'?s not the (?:fix|solution|answer)\b",
)


def matches(patterns: list[re.Pattern[str]], text: str) -> list[str]:
    return [m.group(0).strip() for p in patterns for m in [p.search(text)] if m]


def frustration_points(text: str) -> tuple[int, list[str]]:
    """Weighted frustration indicators of one turn, and the words that carried them.

    A span matched at a higher weight is not counted again at a lower one ("I'm furious" is 3, not
    3 + 2). Typed text may also shout: a turn with two or more ALL-CAPS words that are not acronyms
    and no thanks counts 1, and a run of "!!" counts 1 (speech to text produces neither).
    """
    text = rule_text(text)
    taken: list[tuple[int, int]] = []
    points = 0
    found: list[str] = []
    for weight, patterns in FRUSTRATION:
        for p in patterns:
            for m in p.finditer(text):
                s, e = m.span()
                if any(s < te and ts < e for ts, te in taken):
                    continue
                taken.append((s, e))
                points += weight
                found.append(m.group(0).lower())
    caps = [w for w in _CAPS_WORD.findall(text) if w not in _CAPS_ALLOWED]
    if len(caps) >= 2 and not _THANKS.search(text):
        points += 1
        found.append(" ".join(caps[:5]))
    if _EXCLAIM_RUN.search(text) and not _THANKS.search(text):
        points += 1
        found.append("!!")
    return points, found


def frustration_indicators(text: str) -> list[str]:
    """The words of ``text`` that count as frustration (see ``frustration_points`` for weights)."""
    return frustration_points(text)[1]


def is_not_resolved(text: str) -> bool:
    """The customer says the previous answer did not solve the problem."""
    return bool(matches(NOT_RESOLVED, rule_text(text)))


#: the caller says it is solved ("got it, thanks", "sorted, cheers", "that worked"), and nothing still fails
RESOLVED = re.compile(
    r"\b(?:thanks|thank you|cheers|sorted|got it|that worked|it worked|works now|working now|all good|that's done"
    r"|that's all i needed|that fixed it|fixed it|perfect|brilliant)\b", re.IGNORECASE)
STILL_FAILING = re.compile(r"\b(?:still|not|didn't|doesn't|don't|can't|won't|isn't|no luck|again)\b", re.IGNORECASE)


def sounds_resolved(text: str) -> bool:
    """The turn says the problem is solved and nothing in it says it still fails."""
    text = rule_text(text)
    return bool(RESOLVED.search(text)) and not STILL_FAILING.search(text)
