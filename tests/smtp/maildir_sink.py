"""An aiosmtpd handler for the tests' SMTP sink: each message received is written, whole and
with its envelope recipients, as one file in a folder (atomically: written under a temporary
name, then renamed), so the tests read exactly what a mail server received.

    PYTHONPATH=tests/smtp python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c maildir_sink.Maildir FOLDER
"""

import os
import uuid


class Maildir:
    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("maildir_sink.Maildir needs the folder to write messages to")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        name = uuid.uuid4().hex
        temporary = os.path.join(self.folder, f".{name}.tmp")
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        with open(temporary, "wb") as out:
            out.write(f"X-Envelope-From: {envelope.mail_from}\r\n".encode("utf-8"))
            for recipient in envelope.rcpt_tos:
                out.write(f"X-Envelope-To: {recipient}\r\n".encode("utf-8"))
            out.write(content)
        os.rename(temporary, os.path.join(self.folder, f"{name}.eml"))
        return "250 Message accepted for delivery"
