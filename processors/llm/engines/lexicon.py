"""A small concept lexicon for knowledge-base retrieval: synonym groups, generic words.

Pure Python (no pipecat, no numpy). Visitors paraphrase ("can I run it on my own server?") where
the knowledge base says "host it yourself"; a concept groups the words and short phrases that
mean the same thing in this domain (a real-time conversational video agent and the software
around it). ``ConceptLexicon.find`` tags both passages and questions with the concepts they
mention, so a question and a passage that share a concept but no word still meet, at reduced
weight (see ``retrieval``).

Constraints:

* A phrase is matched on stemmed words (``text.stem``) with stopwords kept ("own server",
  "know when"); between two phrase words at most ``gap`` other words may stand ("host presence
  yourself" matches "host yourself").
* Groups are about meaning in general, never about one knowledge base's sentences; an ambiguous
  word ("host": hosted service or self-hosting?) stays out of every group and is matched only
  as itself.
* ``GENERIC`` lists everyday words that are not stopwords but say little about a technical
  topic ("time", "game", "world"): a question made of them only should not be answered from a
  passage that happens to use one of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from presence.processors.llm.engines.text import stem

# concept name -> words and phrases that express it (plain lowercase English; stemmed on load)
CONCEPTS: dict[str, str] = {
    "self-hosting": """self host | self hosted | self hosting | self hostable | selfhost |
        selfhosted | host yourself | host myself | host ourselves | host it ourselves |
        own server | own servers | my server | our server | our servers | own machine |
        own machines | my machine | my computer | own computer | own hardware | own laptop |
        own infrastructure | own cloud | on premise | on premises | on prem | onprem |
        private server | private cloud | local server | my company | our company | in house |
        deploy | deployment | privacy | private | stay with you | data stays | my data |
        data stored | stored | storage""",
    "offline": """offline | off line | internet | online | no network | without network |
        network | wifi | wi fi | air gapped | airgapped | disconnected | no connection |
        internet connection | internet access | network access | cloud account | no cloud |
        without cloud | no accounts |
        no account | locally | run offline | no api key | no api keys | no keys""",
    "cloud": """cloud | hosted | saas | online service | web service | third party | managed service |
        remote api | cloud service | cloud services | hosted provider | hosted providers |
        premium | premium version | paid version | paid tier""",
    "license": """license | licence | licensed | licensing | open source | opensource | apache |
        gpl | mit license | free | for free | cost | costs | price | pricing | pay | paid |
        paying | charge | fee | fees | subscription | money | commercial | commercially |
        proprietary | copyright | source code""",
    "speed": """fast | faster | fastest | quick | quickly | speed | slow | slowly | latency | delay |
        delays | lag | laggy | response time | responsive | how long | take long | wait |
        millisecond | milliseconds | instant | instantly | snappy""",
    "voice": """voice | voices | speech synthesis | text to speech | tts | sound | sounds |
        robotic | natural voice | accent | espeak | elevenlabs | eleven labs | piper |
        synthesis | synthesize | synthesise | synthesizer | out loud | aloud | robot | voice clone |
        clone my voice | voice cloning | male voice | female voice | pitch""",
    "hearing": """hear | hears | hearing | listen | listens | listening | speech recognition |
        recognize speech | recognise speech | recognition | transcribe | transcribes |
        transcription | transcript | speech to text | stt | dictation | understand me |
        understand what i say | deepgram | deep gram | pocketsphinx | whisper | asr |
        writes down | hear me | mishear | misheard | accent | accents | background noise""",
    "face": """face | faces | avatar | avatars | replica | replicas | portrait | photo | photos |
        picture | image | talking head | character face | appearance | look like |
        looks like | upload | uploads | uploaded | digital human | 3d | cartoon |
        custom face""",
    "motion": """move | moves | moving | movement | movements | motion | animate | animated |
        animation | animates | sway | swaying | blink | blinks | blinking | gesture | gestures""",
    "lip-sync": """lip sync | lip synced | lip syncing | lipsync | lip sink | lips | lip | mouth |
        mouths | jaw | in sync | in time with | sync | synchronise | synchronize |
        synchronized | synchronised""",
    "vision": """see me | see you | see the user | see my | can it see | can you see | it sees |
        tell if | tell whether | tell when | watch | watches | watching | look at | looks at | camera |
        cameras | webcam | web cam | vision | perception | perceive | detect | detects |
        detection | notice | notices | eyes | visual | visually | face detection |
        facial expression | expressions | emotion | emotions | eye contact | recognize me""",
    "language-model": """language model | llm | large language model | gpt | chatgpt | ai model |
        brain | claude | anthropic | openai | open ai | ollama | vllm | chatbot | think |
        thinks | generate answers | gemini | llama | mistral | local model | local llm |
        gpt 4 | ai""",
    "knowledge": """knowledge base | knowledge | documents | document | docs | markdown | faq |
        keyword search | retrieval | search | answers from | answer from | come up with |
        documentation | pdf | pdfs | my own documents | my files |
        answer questions | answers questions | responder | own documents | own data |
        own content | get its answers | gets its answers | fallback | dont know |
        nothing matches | no answer | cant answer | how do you know | know the answer |
        know the answers | replies come from | answers come from | responses come from |
        its replies | its answers | its responses | where does it get""",
    "turn-taking": """turn | turns | turn taking | interrupt | interrupts | interruption |
        interrupting | barge in | cut off | cut me off | talk over | talking over |
        finished talking | finish talking | done talking | stop talking | stops talking |
        stopped talking | end of turn | pause | pauses | silence |
        when to answer | when to respond | know when | finished speaking | stop speaking |
        stopped speaking | done speaking | done talking | finished | my turn | your turn | barge in |
        talk at the same time | overlap | interrupted""",
    "configuration": """config | configuration | configure | configuring | configured | settings |
        setting | yaml | pipeline file | config file | options | set up | setup""",
    "errors": """error | errors | mistake | mistakes | typo | typos | wrong | invalid | validate |
        validates | validation | validating | fail | fails | failure | broken | incorrect |
        misspell | misspelled | misspelt | bad value | complain | complains | warn |
        warning | warnings""",
    "swapping": """swap | swapping | switch | switching | change | changing | replace | replacing |
        exchange | substitute | different provider | another provider | use a different |
        pick | choose | select | edit one line | swap out | instead | instead of | move over |
        move over to | move it to | migrate | migrating | switch over | trade""",
    "provider": """provider | providers | service | services | backend | backends | vendor |
        vendors | integration | integrations""",
    "secrets": """api key | api keys | key | keys | secret | secrets | token | tokens | credential |
        credentials | password | passwords | environment variable | environment variables |
        env var | env vars | dotenv | dot env""",
    "listing": """list | lists | listing | show all | see all | available |
        every provider | options | see which | find out which | what options |
        all providers | all the providers | command line | cli | summary""",
    "hardware": """gpu | gpus | graphics card | nvidia | cuda | hardware | computer | computers |
        laptop | laptops | cpu | cpus | specs | system requirements | ram | memory |
        raspberry pi | mac | macbook | macos | windows | linux | apple silicon | powerful |
        kind of machine | cores | video card""",
    "installing": """install | installs | installing | installation | pip | pip install | set up |
        setup | get started | getting started | begin with | quickstart | quick start |
        download | first steps | try it | get going | up and running | docker | container |
        dependencies | requirements | conda | clone the repo | github | quickstart guide""",
    "web-api": """rest | rest api | http | https | endpoint | endpoints | programmatically |
        programmatic | from code | from my code | route | routes | url | urls | request |
        requests | post | curl | resource | resources | v2 | json api | sdk""",
    "notifications": """webhook | webhooks | web hook | web hooks | callback | callbacks | notify |
        notified | notification | notifications | alert | alerts | polling | poll |
        app knows | let my app know""",
    "conversation": """conversation | conversations | session | sessions | call | calls | chat |
        chats | meeting | meetings""",
    "starting": """start | starts | starting | begin | begins | launch | launches | initiate |
        kick off | create | creates""",
    "transport": """transport | transports | connect | connects | connection | connections |
        connecting | join | joins | room | rooms | browser | web page | webpage | website |
        phone | telephone | telephony | websocket | websockets | web socket | web sockets |
        webrtc | web rtc | daily | client | clients | stream | streams | streaming | zoom |
        talk to | speak to | reach |
        microsoft teams | google meet | video call | video calls | video chat | livekit""",
    "browser": """browser | browsers | chrome | firefox | safari | web page | webpage | web app |
        website | webrtc | web rtc | web browser | install an app | download an app | no app |
        without an app""",
    "phone": """phone | phones | telephone | telephony | phone call | phone calls | sip | twilio |
        pstn | call center | phone system | phone systems | dial in""",
    "recording": """wav | wave file | audio file | video file | recording | recordings | recorded |
        prerecorded | pre recorded | mp4 | mp3 | from a file | to a file | file transport""",
    "benchmarks": """benchmark | benchmarks | benchmarking | measure | measures | measured |
        measurement | measurements | metric | metrics | profile | profiling | performance |
        report | reports | chart | charts | stats | statistics""",
    "fakes": """fake | fakes | mock | mocks | mocked | scripted | simulated | simulate |
        simulation | dummy | stub | stubs | pretend |
        replay | set delays | repeatable | reproducible | deterministic""",
    "persona": """persona | personas | character | personality | identity | who you are |
        system prompt | greeting | bot | assistant | assistant for | agent for | bot for |
        my business | my shop | my store | my customers | my clinic | my restaurant""",
    "customising": """custom | customize | customise | customizing | customising | personalize |
        personalise | my own agent | own agent | own bot | own persona | make my own |
        create my own | build my own | own documents | own content | own data | tailor""",
    "testing": """test | tests | testing | tested | unit test | unit tests | pytest | verify |
        make sure it works | run test""",
    "registering": """register | registers | registering | registry | registration | decorator |
        decorators | plug in | plugin | plugins | hook up | wire up""",
    "extending": """add a provider | add a new provider | new provider | extend | extending |
        extension | custom provider | own provider | write a processor | own processor |
        implement | support for a new | support a new | add support | plugin system |
        contribute | my own code | custom code | developer | developers""",
    "engine": """engine | engines | heavy work | heavy lifting | heavy computation | computation |
        compute | numpy | torch | pytorch | number crunching | plain python | core logic""",
    "idle": """idle | freeze | freezes | frozen | still | static | nobody is talking |
        no one is talking | nobody talking | not talking | while it listens | alive | lifelike |
        breathing""",
    "realism": """realistic | realism | neural | neural network | neural renderer | deep learning |
        machine learning | trained | trained network | wav2lip | photorealistic | more real |
        better looking | higher quality | wav two lip | wave to lip | wav to lip""",
    "weights": """model weights | weights | checkpoint | checkpoints | pretrained | pre trained |
        trained model | model file | model files | download a model""",
    "parts": """part | parts | component | components | stage | stages | step | steps | piece |
        pieces | module | modules | building blocks | made of | consist | consists |
        architecture | under the hood | structure | flows""",
    "user-presence": """someone | somebody | anyone there | appear | appears | appeared |
        walks in | walks away | walk away | walked away | leaves | left the frame | comes in |
        in front of the camera | in the room | shows up""",
    "frequency": """how often | times a second | per second | every frame | frame rate | fps |
        frames per second""",
    "disabling": """disable | disabled | disabling | turn off | turned off | switch off |
        deactivate | opt out | enable | enabled | turn on | switch on | toggle""",
    "location": """folder | folders | directory | directories | stored | saved | kept | located |
        location | path | live | lives""",
    "purpose": """purpose | point | goal | goals | reason | reasons | motivation | exist | exists |
        mission | benefit | benefits | advantage | advantages | why use | why would |
        why should i use | why choose | fully own | solve | solves | problem it solves |
        use case | use cases | what is it for""",
    "defaults": """default | defaults | by default | out of the box | stock | standard setup |
        built in | comes with | ships with | preinstalled | pre installed | bundled""",
    "foundation": """built on | based on | build on | built on top | runs on top | foundation |
        underlying | depends on | depend on | powered by | framework | frameworks | pipecat |
        pipe cat | library | libraries | underneath | beneath | on top of | sits on""",
}

# Everyday words that carry little topic on their own (beyond ``text.STOPWORDS``).
GENERIC = frozenset(
    """time times day days year years week weeks month months today tomorrow yesterday tonight
    thing place people person someone somebody anyone everyone anything everything nothing
    stuff way ways lot lots bit kind sort type part number side end guy guys question questions
    answer answers
    good bad best better great big small little old high low first last next right left sure
    true cool nice fun possible able pretty quite rather almost enough maybe probably soon ago
    already always never often usually sometimes again around away back far else even still
    exactly simply basically generally mostly really definitely certainly actually
    easily directly properly currently recently finally whole entire main certain special
    various several many much main whole single double easy hard simple difficult
    different other another
    go goes going went gone come comes coming came take takes took taken give gives gave
    given find finds found think thinks thought feel feels felt try tries tried keep keeps
    kept put puts mean means meant become becomes became leave leaves left seem seems seemed
    happen happens happened bring brings brought stand lose meet follow follows spend wait
    stay reach remain suggest pass require requires decide pull want wants wanted use used
    uses using make makes making made work works working worked support supports supported
    change changes changed changing help helps new news see sees saw seen look looks looked
    show shows showed shown dot com co io send sends sent save saves saved belong belongs
    begin began happen handle handles handled deal deals manage
    get gets got getting set sets put tell tells told ask asks
    asked like likes liked love need needs needed let lets allow allows allowed
    possible probably likely""".split()
)

# Spoken-letter words that speech recognition writes for a spelled acronym ("web our tea sea").
LETTER_SOUNDS: dict[str, str] = {
    "ay": "a", "bee": "b", "be": "b", "sea": "c", "see": "c", "cee": "c", "dee": "d",
    "ee": "e", "eff": "f", "gee": "g", "aitch": "h", "eye": "i", "jay": "j", "kay": "k",
    "el": "l", "ell": "l", "em": "m", "en": "n", "oh": "o", "pea": "p", "pee": "p",
    "queue": "q", "cue": "q", "are": "r", "our": "r", "ar": "r", "es": "s", "ess": "s",
    "tea": "t", "tee": "t", "you": "u", "vee": "v", "ex": "x", "why": "y", "zee": "z",
    "zed": "z",
}  # fmt: skip


def _parse(phrases: str) -> list[tuple[str, ...]]:
    out = []
    for phrase in phrases.split("|"):
        ws = tuple(stem(w) for w in phrase.lower().split())
        if ws:
            out.append(ws)
    return out


class ConceptLexicon:
    """Finds the concepts a text mentions.

    Args:
        concepts: Concept name -> ``"|"``-separated words and phrases (see ``CONCEPTS``).
        gap: How many other words may stand between two words of a phrase.

    Matching is O(words × longest phrase) per text with dictionary look-ups only.
    """

    def __init__(self, concepts: Mapping[str, str] = CONCEPTS, *, gap: int = 1):
        self.gap = gap
        # first stem -> [(rest of phrase, concept)]
        self._phrases: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        for name, phrases in concepts.items():
            for ws in _parse(phrases):
                self._phrases[ws[0]].append((ws[1:], name))
        self.names = sorted(concepts)

    def __bool__(self) -> bool:
        return bool(self._phrases)

    def find(self, stems: Sequence[str]) -> list[tuple[int, int, str]]:
        """Return ``(first, last, concept)`` for every phrase found in ``stems`` (inclusive span).

        Args:
            stems: The text's words, stemmed, stopwords kept.

        """
        longest: dict[tuple[int, str], int] = {}  # (start, concept) -> end of the longest phrase
        for i, s in enumerate(stems):
            for rest, name in self._phrases.get(s, ()):
                end = self._match_rest(stems, i, rest)
                if end is not None and end >= longest.get((i, name), -1):
                    longest[(i, name)] = end
        return [(i, end, name) for (i, name), end in longest.items()]

    def _match_rest(self, stems: Sequence[str], i: int, rest: tuple[str, ...]) -> int | None:
        pos = i
        for want in rest:
            for j in range(pos + 1, min(len(stems), pos + 2 + self.gap)):
                if stems[j] == want:
                    pos = j
                    break
            else:
                return None
        return pos


DEFAULT_LEXICON = ConceptLexicon()
