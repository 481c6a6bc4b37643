"""Stand-in: the tests flip `interrupted` to check that nodes stop between steps."""

interrupted = False


class InterruptProcessingException(Exception):
    pass


def get_torch_device():
    return "cpu"


def throw_exception_if_processing_interrupted():
    if interrupted:
        raise InterruptProcessingException()


unloaded = []


def unload_all_models():
    unloaded.append(True)
