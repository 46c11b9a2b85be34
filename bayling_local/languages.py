"""The languages BayLing 2 covers, and one resolver for every way a user may name them.

BayLing 2 was tuned on cross-lingual instructions over 100+ languages, essentially the major
languages of FLORES-200, so the table is keyed by FLORES-200 code. The ISO 639-3 code is the
FLORES code's prefix by construction; ISO 639-1 is the macrolanguage's two-letter code where the
FLORES entry is an individual language inside one (``arb`` -> ``ar``, ``pes`` -> ``fa``).

Two names matter to the prompts: ``name`` (English) fills BayLing's English instruction
``Provide the {name} translation for this sentence: ...`` and ``chinese`` fills the Chinese one
``提供这句话的{chinese}翻译：...``. Chinese and English use the idiomatic 中文 / 英文; every other
language the usual ``…语`` name.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

from .errors import UsageError


@dataclass(frozen=True)
class Language:
    """One language of the table."""

    iso1: str | None  # ISO 639-1, None where the language has none
    iso3: str  # ISO 639-3
    flores: str  # FLORES-200 code: ISO 639-3 + "_" + ISO 15924 script
    name: str  # English name, used in the English instruction
    native: str  # autonym
    chinese: str  # Chinese name, used in the Chinese instruction
    aliases: tuple[str, ...] = ()
    tag: str | None = None  # BCP-47 tag for an entry whose ISO codes another entry owns

    @property
    def code(self) -> str:
        """The short code users see and type: ISO 639-1, else ISO 639-3 (or the tag)."""
        return self.tag or self.iso1 or self.iso3

    @property
    def script(self) -> str:
        """ISO 15924 script of the FLORES-200 entry, e.g. ``Hans``, ``Arab``."""
        return self.flores.split("_", 1)[1]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form, for ``bayling-local languages --json``."""
        return {
            "code": self.code,
            "iso639_1": self.iso1,
            "iso639_3": self.iso3,
            "flores200": self.flores,
            "name": self.name,
            "native": self.native,
            "chinese": self.chinese,
            "aliases": list(self.aliases),
        }

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


# FLORES-200 code | ISO 639-1 | English name | native name | Chinese name | aliases
_TABLE = """
afr_Latn | af | Afrikaans | Afrikaans | 南非荷兰语 | 阿非利卡语
aka_Latn | ak | Akan | Akan | 阿坎语 | Twi
als_Latn | sq | Albanian | shqip | 阿尔巴尼亚语 | sqi, alb, Tosk Albanian
amh_Ethi | am | Amharic | አማርኛ | 阿姆哈拉语 |
arb_Arab | ar | Arabic | العربية | 阿拉伯语 | ara, Modern Standard Arabic, Standard Arabic
ary_Arab |    | Moroccan Arabic | الدارجة | 摩洛哥阿拉伯语 | Darija
arz_Arab |    | Egyptian Arabic | مصرى | 埃及阿拉伯语 |
asm_Beng | as | Assamese | অসমীয়া | 阿萨姆语 |
ast_Latn |    | Asturian | asturianu | 阿斯图里亚斯语 |
ayr_Latn | ay | Aymara | aymar aru | 艾马拉语 | aym, Central Aymara
azj_Latn | az | Azerbaijani | azərbaycan dili | 阿塞拜疆语 | aze, North Azerbaijani, Azeri
bak_Cyrl | ba | Bashkir | башҡорт теле | 巴什基尔语 |
bam_Latn | bm | Bambara | bamanankan | 班巴拉语 |
ban_Latn |    | Balinese | basa Bali | 巴厘语 |
bel_Cyrl | be | Belarusian | беларуская | 白俄罗斯语 | Byelorussian
ben_Beng | bn | Bengali | বাংলা | 孟加拉语 | Bangla
bho_Deva |    | Bhojpuri | भोजपुरी | 博杰普尔语 |
bod_Tibt | bo | Tibetan | བོད་སྐད་ | 藏语 | tib, Standard Tibetan, 藏文
bos_Latn | bs | Bosnian | bosanski | 波斯尼亚语 |
bul_Cyrl | bg | Bulgarian | български | 保加利亚语 |
cat_Latn | ca | Catalan | català | 加泰罗尼亚语 | Valencian
ceb_Latn |    | Cebuano | Sinugboanon | 宿务语 |
ces_Latn | cs | Czech | čeština | 捷克语 | cze
ckb_Arab |    | Central Kurdish | کوردیی ناوەندی | 中库尔德语 | Sorani, 索拉尼语
crh_Latn |    | Crimean Tatar | qırımtatar tili | 克里米亚鞑靼语 |
cym_Latn | cy | Welsh | Cymraeg | 威尔士语 | wel
dan_Latn | da | Danish | dansk | 丹麦语 |
deu_Latn | de | German | Deutsch | 德语 | ger, 德文
dzo_Tibt | dz | Dzongkha | རྫོང་ཁ | 宗卡语 |
ell_Grek | el | Greek | Ελληνικά | 希腊语 | gre, Modern Greek
eng_Latn | en | English | English | 英文 | 英语
epo_Latn | eo | Esperanto | Esperanto | 世界语 |
est_Latn | et | Estonian | eesti | 爱沙尼亚语 |
eus_Latn | eu | Basque | euskara | 巴斯克语 | baq
ewe_Latn | ee | Ewe | Eʋegbe | 埃维语 |
fao_Latn | fo | Faroese | føroyskt | 法罗语 |
fij_Latn | fj | Fijian | vosa Vakaviti | 斐济语 |
fin_Latn | fi | Finnish | suomi | 芬兰语 |
fra_Latn | fr | French | français | 法语 | fre, 法文
fur_Latn |    | Friulian | furlan | 弗留利语 |
fuv_Latn |    | Nigerian Fulfulde | Fulfulde | 富拉语 | ff, Fula, Fulani, Fulah
gaz_Latn | om | Oromo | Afaan Oromoo | 奥罗莫语 | orm, West Central Oromo
gla_Latn | gd | Scottish Gaelic | Gàidhlig | 苏格兰盖尔语 | Gaelic
gle_Latn | ga | Irish | Gaeilge | 爱尔兰语 | Irish Gaelic
glg_Latn | gl | Galician | galego | 加利西亚语 |
grn_Latn | gn | Guarani | avañe'ẽ | 瓜拉尼语 |
guj_Gujr | gu | Gujarati | ગુજરાતી | 古吉拉特语 |
hat_Latn | ht | Haitian Creole | kreyòl ayisyen | 海地克里奥尔语 | Haitian
hau_Latn | ha | Hausa | Hausa | 豪萨语 |
heb_Hebr | he | Hebrew | עברית | 希伯来语 | iw
hin_Deva | hi | Hindi | हिन्दी | 印地语 |
hrv_Latn | hr | Croatian | hrvatski | 克罗地亚语 |
hun_Latn | hu | Hungarian | magyar | 匈牙利语 |
hye_Armn | hy | Armenian | հայերեն | 亚美尼亚语 | arm
ibo_Latn | ig | Igbo | Asụsụ Igbo | 伊博语 |
ilo_Latn |    | Ilocano | Ilokano | 伊洛卡诺语 | Iloko
ind_Latn | id | Indonesian | Bahasa Indonesia | 印度尼西亚语 | in, 印尼语
isl_Latn | is | Icelandic | íslenska | 冰岛语 | ice
ita_Latn | it | Italian | italiano | 意大利语 |
jav_Latn | jv | Javanese | basa Jawa | 爪哇语 |
jpn_Jpan | ja | Japanese | 日本語 | 日语 | 日文, jp
kab_Latn |    | Kabyle | Taqbaylit | 卡拜尔语 |
kan_Knda | kn | Kannada | ಕನ್ನಡ | 卡纳达语 |
kat_Geor | ka | Georgian | ქართული | 格鲁吉亚语 | geo
kaz_Cyrl | kk | Kazakh | қазақ тілі | 哈萨克语 |
khk_Cyrl | mn | Mongolian | монгол хэл | 蒙古语 | mon, Halh Mongolian, Khalkha Mongolian
khm_Khmr | km | Khmer | ខ្មែរ | 高棉语 | Cambodian
kik_Latn | ki | Kikuyu | Gĩkũyũ | 基库尤语 |
kin_Latn | rw | Kinyarwanda | Ikinyarwanda | 卢旺达语 |
kir_Cyrl | ky | Kyrgyz | кыргызча | 吉尔吉斯语 | Kirghiz, 柯尔克孜语
kmr_Latn | ku | Kurdish | Kurdî | 库尔德语 | kur, Northern Kurdish, Kurmanji, 北库尔德语
kor_Hang | ko | Korean | 한국어 | 韩语 | 韩文, 朝鲜语, 조선말
lao_Laoo | lo | Lao | ລາວ | 老挝语 | Laotian
lin_Latn | ln | Lingala | lingála | 林加拉语 |
lit_Latn | lt | Lithuanian | lietuvių | 立陶宛语 |
ltg_Latn |    | Latgalian | latgalīšu | 拉特加莱语 |
ltz_Latn | lb | Luxembourgish | Lëtzebuergesch | 卢森堡语 | Letzeburgesch
lug_Latn | lg | Ganda | Luganda | 卢干达语 |
luo_Latn |    | Luo | Dholuo | 卢奥语 |
lvs_Latn | lv | Latvian | latviešu | 拉脱维亚语 | lav, Standard Latvian
mai_Deva |    | Maithili | मैथिली | 迈蒂利语 |
mal_Mlym | ml | Malayalam | മലയാളം | 马拉雅拉姆语 |
mar_Deva | mr | Marathi | मराठी | 马拉地语 |
mkd_Cyrl | mk | Macedonian | македонски | 马其顿语 | mac
mlt_Latn | mt | Maltese | Malti | 马耳他语 |
mri_Latn | mi | Maori | te reo Māori | 毛利语 | mao, Māori
mya_Mymr | my | Burmese | မြန်မာဘာသာ | 缅甸语 | bur, Myanmar
nld_Latn | nl | Dutch | Nederlands | 荷兰语 | dut, Flemish
nno_Latn | nn | Norwegian Nynorsk | nynorsk | 新挪威语 | Nynorsk
nob_Latn | nb | Norwegian | norsk bokmål | 挪威语 | no, nor, Norwegian Bokmål, Bokmål, 书面挪威语
npi_Deva | ne | Nepali | नेपाली | 尼泊尔语 | nep
nso_Latn |    | Northern Sotho | Sesotho sa Leboa | 北索托语 | Pedi, Sepedi
nya_Latn | ny | Nyanja | Chichewa | 齐切瓦语 | Chewa
oci_Latn | oc | Occitan | occitan | 奥克语 |
ory_Orya | or | Odia | ଓଡ଼ିଆ | 奥里亚语 | ori, Oriya, 奥迪亚语
pan_Guru | pa | Punjabi | ਪੰਜਾਬੀ | 旁遮普语 | Panjabi, Eastern Panjabi
pap_Latn |    | Papiamento | Papiamentu | 帕皮阿门托语 |
pbt_Arab | ps | Pashto | پښتو | 普什图语 | pus, Southern Pashto, Pushto
pes_Arab | fa | Persian | فارسی | 波斯语 | fas, per, Farsi, Western Persian
plt_Latn | mg | Malagasy | Malagasy | 马达加斯加语 | mlg, Plateau Malagasy, 马尔加什语
pol_Latn | pl | Polish | polski | 波兰语 |
por_Latn | pt | Portuguese | português | 葡萄牙语 | 葡文
prs_Arab |    | Dari | دری | 达利语 | Afghan Persian, 达里语
quy_Latn | qu | Quechua | Runa Simi | 克丘亚语 | que, Ayacucho Quechua
ron_Latn | ro | Romanian | română | 罗马尼亚语 | rum, Moldavian, Moldovan
run_Latn | rn | Rundi | Ikirundi | 基隆迪语 | Kirundi
rus_Cyrl | ru | Russian | русский | 俄语 | 俄文
san_Deva | sa | Sanskrit | संस्कृतम् | 梵语 |
scn_Latn |    | Sicilian | sicilianu | 西西里语 |
sin_Sinh | si | Sinhala | සිංහල | 僧伽罗语 | Sinhalese
slk_Latn | sk | Slovak | slovenčina | 斯洛伐克语 | slo
slv_Latn | sl | Slovenian | slovenščina | 斯洛文尼亚语 | Slovene
smo_Latn | sm | Samoan | Gagana Samoa | 萨摩亚语 |
sna_Latn | sn | Shona | chiShona | 绍纳语 |
snd_Arab | sd | Sindhi | سنڌي | 信德语 |
som_Latn | so | Somali | Soomaali | 索马里语 |
sot_Latn | st | Southern Sotho | Sesotho | 南索托语 | Sotho, 塞索托语
spa_Latn | es | Spanish | español | 西班牙语 | Castilian, castellano, 西班牙文
srp_Cyrl | sr | Serbian | српски | 塞尔维亚语 |
ssw_Latn | ss | Swati | siSwati | 斯威士语 | Swazi
sun_Latn | su | Sundanese | basa Sunda | 巽他语 |
swe_Latn | sv | Swedish | svenska | 瑞典语 |
swh_Latn | sw | Swahili | Kiswahili | 斯瓦希里语 | swa
tam_Taml | ta | Tamil | தமிழ் | 泰米尔语 |
tat_Cyrl | tt | Tatar | татар теле | 鞑靼语 |
tel_Telu | te | Telugu | తెలుగు | 泰卢固语 |
tgk_Cyrl | tg | Tajik | тоҷикӣ | 塔吉克语 |
tgl_Latn | tl | Tagalog | Tagalog | 他加禄语 | fil, Filipino, Pilipino, 菲律宾语
tha_Thai | th | Thai | ไทย | 泰语 | 泰文
tir_Ethi | ti | Tigrinya | ትግርኛ | 提格利尼亚语 |
tpi_Latn |    | Tok Pisin | Tok Pisin | 托克皮辛语 |
tsn_Latn | tn | Tswana | Setswana | 茨瓦纳语 |
tso_Latn | ts | Tsonga | Xitsonga | 聪加语 |
tuk_Latn | tk | Turkmen | türkmen dili | 土库曼语 |
tur_Latn | tr | Turkish | Türkçe | 土耳其语 |
uig_Arab | ug | Uyghur | ئۇيغۇرچە | 维吾尔语 | Uighur
ukr_Cyrl | uk | Ukrainian | українська | 乌克兰语 |
urd_Arab | ur | Urdu | اردو | 乌尔都语 |
uzn_Latn | uz | Uzbek | oʻzbekcha | 乌兹别克语 | uzb, Northern Uzbek
vec_Latn |    | Venetian | vèneto | 威尼斯语 |
vie_Latn | vi | Vietnamese | Tiếng Việt | 越南语 | 越南文
war_Latn |    | Waray | Winaray | 瓦瑞语 |
wol_Latn | wo | Wolof | Wolof | 沃洛夫语 |
xho_Latn | xh | Xhosa | isiXhosa | 科萨语 |
ydd_Hebr | yi | Yiddish | ייִדיש | 意第绪语 | yid, ji, Eastern Yiddish
yor_Latn | yo | Yoruba | Yorùbá | 约鲁巴语 |
yue_Hant |    | Cantonese | 粵語 | 粤语 | 廣東話, 广东话, Yue Chinese
zho_Hans | zh | Chinese | 中文 | 中文 | zho, chi, cmn, Mandarin, Simplified Chinese, Chinese Simplified, 简体中文, 中文简体, 简体, 汉语, 漢語, 普通话, 华语, 汉文, 中国语
zho_Hant | zh | Traditional Chinese | 繁體中文 | 繁体中文 | Chinese Traditional, 繁體, 繁体, 中文繁體, 正體中文, 國語, 繁體字
zsm_Latn | ms | Malay | Bahasa Melayu | 马来语 | msa, may, Standard Malay
zul_Latn | zu | Zulu | isiZulu | 祖鲁语 |
"""

# Entries whose ISO codes belong to another entry get a distinct BCP-47 tag as their code.
_TAGS = {"zho_Hant": "zh-Hant"}

# BCP-47 Chinese: which script a region or script subtag means.
_CHINESE_BASES = frozenset({"zh", "zho", "chi", "cmn"})
_TRADITIONAL_SUBTAGS = frozenset({"hant", "tw", "hk", "mo"})


def _parse_table(text: str) -> tuple[Language, ...]:
    languages = []
    for line in text.strip().splitlines():
        flores, iso1, name, native, chinese, aliases = (f.strip() for f in line.split("|"))
        languages.append(
            Language(
                iso1=iso1 or None,
                iso3=flores.split("_", 1)[0],
                flores=flores,
                name=name,
                native=native,
                chinese=chinese,
                aliases=tuple(dict.fromkeys(a.strip() for a in aliases.split(",") if a.strip())),
                tag=_TAGS.get(flores),
            )
        )
    return tuple(languages)


LANGUAGES: tuple[Language, ...] = _parse_table(_TABLE)


def all_languages() -> tuple[Language, ...]:
    """Every language of the table, ordered by FLORES-200 code."""
    return LANGUAGES


def _key(text: str) -> str:
    """Compare names case-blind, ignoring spaces, punctuation, ``_`` and ``-``."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in text if unicodedata.category(c)[0] not in "ZPC")


def _fold_accents(key: str) -> str:
    """Second-chance key: ``francais`` finds ``français``."""
    decomposed = unicodedata.normalize("NFKD", key)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _names(lang: Language) -> list[str]:
    """Every string that names ``lang``, strongest first."""
    names = [lang.code, lang.flores]
    if lang.tag is None:  # a tagged entry shares its ISO codes with the main entry
        names += [c for c in (lang.iso1, lang.iso3) if c]
    return [*names, lang.name, lang.native, lang.chinese, *lang.aliases]


@cache
def _index() -> dict[str, Language]:
    index: dict[str, Language] = {}
    for lang in LANGUAGES:
        for name in _names(lang):
            key = _key(name)
            other = index.setdefault(key, lang)
            if other is not lang:
                raise RuntimeError(f"language table: {name!r} names {other} and {lang}")
    return index


@cache
def _folded_index() -> dict[str, Language]:
    folded: dict[str, Language | None] = {}
    for key, lang in _index().items():
        fkey = _fold_accents(key)
        folded[fkey] = lang if folded.get(fkey, lang) is lang else None  # None: ambiguous
    return {k: v for k, v in folded.items() if v is not None}


def lookup(name: str) -> Language | None:
    """The language ``name`` denotes, or None; see :func:`resolve` for what is accepted."""
    key = _key(name)
    if not key:
        return None
    found = _index().get(key) or _folded_index().get(_fold_accents(key))
    if found is not None:
        return found
    return _lookup_tag(name)


def _split_tag(name: str) -> tuple[str, list[str]] | None:
    """``zh_Hant-TW`` -> ``("zh", ["hant", "tw"])``; None when ``name`` is not tag-shaped."""
    subtags = [s for s in re.split(r"[\s_\-]+", name.strip().casefold()) if s]
    if len(subtags) < 2 or not re.fullmatch(r"[a-z]{2,3}", subtags[0]):
        return None
    if not all(re.fullmatch(r"[a-z]{2,4}|\d{3}", s) for s in subtags[1:]):
        return None
    return subtags[0], subtags[1:]


def _lookup_tag(name: str) -> Language | None:
    """BCP-47-ish tags: ``zh-TW``, ``zh_Hans_SG``, ``pt-BR``, ``sr-Latn``, ``en US``."""
    split = _split_tag(name)
    if split is None:
        return None
    base, rest = split
    if base in _CHINESE_BASES:
        traditional = any(s in _TRADITIONAL_SUBTAGS for s in rest)
        return _index()[_key("zho_Hant" if traditional else "zho_Hans")]
    lang = _index().get(base)
    if lang is None:
        return None
    # A script subtag picks the entry in that script when the table has one (FLORES-style).
    for sub in rest:
        scripted = _index().get(_key(f"{lang.iso3}_{sub}"))
        if scripted is not None:
            return scripted
    return lang


def _suggestions(name: str, limit: int = 3) -> list[Language]:
    """The languages whose names are nearly as close to ``name`` as the closest one."""
    split = _split_tag(name)
    key = split[0] if split else _key(name)  # a tag is misspelt in its language subtag
    # A misspelt name is compared with names, not with 2-3 letter codes that share letters.
    keys = [k for k in _index() if len(k) >= 4] if len(key) >= 4 else list(_index())
    matcher = difflib.SequenceMatcher(b=key)
    scored: dict[Language, float] = {}
    for candidate in keys:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() < 0.6 or matcher.quick_ratio() < 0.6:
            continue
        score = matcher.ratio()
        lang = _index()[candidate]
        if score >= 0.6 and score > scored.get(lang, 0.0):
            scored[lang] = score
    if not scored:
        return []
    best = max(scored.values())
    ranked = sorted(scored.items(), key=lambda item: -item[1])
    return [lang for lang, score in ranked if score >= best - 0.1][:limit]


def resolve(name: str) -> Language:
    """The language ``name`` denotes.

    Accepts the code, ISO 639-1, ISO 639-3, FLORES-200 code, English, native or Chinese name,
    or an alias; case, spaces, ``_`` and ``-`` do not matter. Language tags with a region or
    script resolve to their language (``pt-BR`` -> Portuguese); Chinese ones pick the script
    (``zh-TW``/``zh-HK``/``zh-Hant`` -> Traditional, ``zh-CN``/``zh-SG``/``zh-Hans`` ->
    Simplified). Anything else is a :class:`UsageError` naming the closest matches.
    """
    found = lookup(name)
    if found is not None:
        return found
    if not _key(name):
        raise UsageError("empty language name; run `bayling-local languages` to list them")
    if len(name) > 64:  # no language name is this long; don't echo a pasted paragraph back
        raise UsageError(
            f"unknown language {name[:40]!r}… ({len(name)} characters); "
            "run `bayling-local languages` to list them"
        )
    close = _suggestions(name)
    if close:
        options = [str(lang) for lang in close]
        hint = options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]
        raise UsageError(f"unknown language {name!r}; did you mean {hint}?")
    raise UsageError(f"unknown language {name!r}; run `bayling-local languages` to list them")


def format_table(languages: tuple[Language, ...] | list[Language] | None = None) -> str:
    """Plain-text columns (code, ISO 639-3, FLORES-200, English, native) for the CLI."""
    rows = [("code", "ISO 639-3", "FLORES-200", "English name", "native name")]
    rows += [
        (lang.code, lang.iso3, lang.flores, lang.name, lang.native)
        for lang in (LANGUAGES if languages is None else languages)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4] for row in rows]
    return "\n".join(line.rstrip() for line in lines)
