"""What the IVR says, per language: the prompt texts and the words that mean yes."""

from __future__ import annotations

_EN = {
    "unknown_number": "Sorry, this number is not in service. Goodbye.",
    "recording_notice": "This call may be recorded for quality and training.",
    "closed": "Thanks for calling {brand}. We are closed right now.",
    "welcome": "Thanks for calling {brand}.",
    "closed_voicemail": "Leave a message after the beep and we will add it to your conversation.",
    # The choices come within a few seconds; what the customer last wrote follows for who needs it.
    "greet_one": "Hi{name}. Is this about {subject}? Press 1 or say yes, 2 or say no.",
    "last_wrote": "Your last message: {message}",
    "choose": "Hi{name}. Which conversation are you calling about?",
    "choose_option": "For {summary}, press {digit}.",
    "choose_other": "For something else, press 0.",
    "ask_code": "If the {brand} app shows you a six digit call code, enter it now.",
    "bad_code": "Sorry, that code did not work.",
    "connecting": "Thanks. Connecting you to someone who can see your conversation.",
    "general": "Connecting you to the next available person at {brand}.",
    "no_agent": "Sorry, nobody can take your call right now. "
                "Leave a message after the beep and we will add it to your conversation.",
    "voicemail_thanks": "Thank you. We have your message. Goodbye.",
    "no_message": "We did not get a message. Goodbye.",
    "whisper": "{brand} call from {caller} about {summary}. Press 1 to accept.",
    "whisper_general": "{brand} support call. Press 1 to accept.",
    "error": "Sorry, something went wrong on our side. Please try again later. Goodbye.",
    "goodbye": "Goodbye.",
    "survey_ask": "Before you go: how did we do? Press a key from 1 to 5, 5 being the best.",
    "survey_comment": "Thank you. After the beep, you can leave a short comment, or simply hang up.",
    "survey_thanks": "Thank you for your feedback. Goodbye.",
    "a_customer": "a customer",
    "callback_greeting": "Hi{name}, this is {brand} returning your message about {subject}. Press 1 to talk to "
                         "someone now, 2 for a later time, 3 if you no longer need help.",
    "callback_voicemail": "Hi{name}, this is {brand} returning your message about {subject}. Sorry we missed you. "
                          "We will try again, or you can reply to us in the app.",
    "callback_try_later": "We will try again later. Goodbye.",
    "callback_not_needed": "This call is no longer needed. Sorry to bother you. Goodbye.",
    "callback_glad": "Glad it's sorted. Goodbye.",
    "slot_offer": "When should we call you?",
    "slot_option": "For {time}, press {digit}.",
    "slot_confirmed": "We will call you {time}. Goodbye.",
    "agent_callback": "{brand} callback for {caller} about {summary}. Press 1 to call them now.",
    "callback_connecting": "Hi{name}, this is {brand} returning your message about {summary}. "
                           "Connecting you now.",
    "customer_unreached": "We couldn't reach the customer. We will try again later. Goodbye.",
}
_ES = {
    "unknown_number": "Lo sentimos, este número no está en servicio. Adiós.",
    "recording_notice": "Esta llamada puede ser grabada con fines de calidad y formación.",
    "closed": "Gracias por llamar a {brand}. Ahora estamos cerrados.",
    "welcome": "Gracias por llamar a {brand}.",
    "closed_voicemail": "Deje un mensaje después del tono y lo añadiremos a su conversación.",
    "greet_one": "Hola{name}. ¿Es sobre {subject}? Pulse 1 o diga sí, 2 o diga no.",
    "last_wrote": "Su último mensaje: {message}",
    "choose": "Hola{name}. ¿Por qué conversación llama?",
    "choose_option": "Para {summary}, pulse {digit}.",
    "choose_other": "Para otra cosa, pulse 0.",
    "ask_code": "Si la aplicación de {brand} le muestra un código de llamada de seis cifras, márquelo ahora.",
    "bad_code": "Lo sentimos, ese código no es válido.",
    "connecting": "Gracias. Le comunicamos con alguien que puede ver su conversación.",
    "general": "Le comunicamos con la próxima persona disponible de {brand}.",
    "no_agent": "Lo sentimos, nadie puede atender su llamada ahora. "
                "Deje un mensaje después del tono y lo añadiremos a su conversación.",
    "voicemail_thanks": "Gracias. Tenemos su mensaje. Adiós.",
    "no_message": "No recibimos ningún mensaje. Adiós.",
    "whisper": "Llamada de {brand} de {caller} sobre {summary}. Pulse 1 para aceptar.",
    "whisper_general": "Llamada de soporte de {brand}. Pulse 1 para aceptar.",
    "error": "Lo sentimos, algo falló de nuestro lado. Inténtelo más tarde. Adiós.",
    "goodbye": "Adiós.",
    "survey_ask": "Antes de colgar: ¿qué tal le atendimos? Pulse una tecla del 1 al 5, siendo 5 la mejor.",
    "survey_comment": "Gracias. Después del tono puede dejar un breve comentario, o simplemente colgar.",
    "survey_thanks": "Gracias por su opinión. Adiós.",
    "a_customer": "un cliente",
}
_FR = {
    "unknown_number": "Désolé, ce numéro n'est pas en service. Au revoir.",
    "recording_notice": "Cet appel peut être enregistré à des fins de qualité et de formation.",
    "closed": "Merci d'avoir appelé {brand}. Nous sommes fermés pour le moment.",
    "welcome": "Merci d'avoir appelé {brand}.",
    "closed_voicemail": "Laissez un message après le bip et nous l'ajouterons à votre conversation.",
    "greet_one": "Bonjour{name}. Est-ce au sujet de {subject} ? Appuyez sur 1 ou dites oui, 2 ou dites non.",
    "last_wrote": "Votre dernier message : {message}",
    "choose": "Bonjour{name}. À propos de quelle conversation appelez-vous ?",
    "choose_option": "Pour {summary}, appuyez sur {digit}.",
    "choose_other": "Pour autre chose, appuyez sur 0.",
    "ask_code": "Si l'application {brand} vous montre un code d'appel à six chiffres, composez-le maintenant.",
    "bad_code": "Désolé, ce code n'a pas fonctionné.",
    "connecting": "Merci. Nous vous mettons en relation avec quelqu'un qui voit votre conversation.",
    "general": "Nous vous mettons en relation avec la prochaine personne disponible chez {brand}.",
    "no_agent": "Désolé, personne ne peut prendre votre appel pour le moment. "
                "Laissez un message après le bip et nous l'ajouterons à votre conversation.",
    "voicemail_thanks": "Merci. Nous avons votre message. Au revoir.",
    "no_message": "Nous n'avons pas reçu de message. Au revoir.",
    "whisper": "Appel {brand} de {caller} au sujet de {summary}. Appuyez sur 1 pour accepter.",
    "whisper_general": "Appel du support {brand}. Appuyez sur 1 pour accepter.",
    "error": "Désolé, un problème est survenu de notre côté. Réessayez plus tard. Au revoir.",
    "goodbye": "Au revoir.",
    "survey_ask": "Avant de partir : comment nous avons fait ? Appuyez sur une touche de 1 à 5, 5 étant la meilleure.",
    "survey_comment": "Merci. Après le bip, vous pouvez laisser un court commentaire, ou simplement raccrocher.",
    "survey_thanks": "Merci pour votre avis. Au revoir.",
    "a_customer": "un client",
}
_CATALOGS = {"en": _EN, "es": _ES, "fr": _FR}
YES_WORDS = {"en": ("yes", "yeah", "yep", "correct", "right"), "es": ("sí", "si", "claro", "correcto"),
             "fr": ("oui", "exact", "ouais")}


def prompt(language: str, key: str, /, **values: str) -> str:
    """The prompt `key` in language (English when the language has no catalog), filled with values."""
    catalog = _CATALOGS.get(language.split("-")[0], _EN)
    return catalog.get(key, _EN[key]).format(**values)


def means_yes(language: str, speech: str) -> bool:
    """Whether what the caller said is a yes, in the call's language."""
    words = speech.lower().replace(".", " ").replace(",", " ").replace("!", " ").split()
    return any(word in YES_WORDS.get(language.split("-")[0], YES_WORDS["en"]) for word in words)
