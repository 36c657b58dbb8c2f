import sys; sys.path.insert(0, "/work/main/tests/serve")
from test_serve_batcher import *
def test_x():
    async def main():
        b2 = Batcher(spec(fail_load=True), BatcherConfig())
        await b2.start()
        print("started", flush=True)
        try:
            t = time.monotonic()
            with pytest.raises(UnavailableError) as ei:
                await b2.ask("q", Params(timeout_s=30))
            print("first", ei.value, flush=True)
            with pytest.raises(UnavailableError):
                await b2.ask("q", Params(timeout_s=30))
            print("second", flush=True)
        finally:
            await b2.stop()
            print("stopped", flush=True)
    run(main())
