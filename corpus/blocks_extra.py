"""More hand-written blocks, for the development split only.

The families and voices that the first blocks covered least (冒充公检法, 刷单返利 and 冒充领导熟人 in full;
one-line messages for every category), in wordings that differ from ``blocks_fraud.py``, and hard
legitimate messages that share their words (a leader's real errand, a police account's real notice, a
chat that mentions a scam). ``generate.py`` composes them with their own seed and adds them to
``dev.jsonl`` only, so the test split stays what it was and its figures keep their meaning. Written for
this corpus; nothing is copied.
"""

from __future__ import annotations

from corpus.blocks_fraud import Blocks
from corpus.blocks_ham import HamBlocks

#: Categories with every part written anew; the others below have one-line messages only.
FRAUD_EXTRA: dict[str, Blocks] = {
    "police_impersonation": Blocks(
        "冒充公检法",
        terse=(
            "{city}{agency}：你名下账户涉嫌{case}，今日不回电将申请冻结，回电{phone}",
            "你的医保卡被人冒用，已经立案，速联系{officer}警官{phone}",
            "经侦通知：你身份证关联一张涉案银行卡，请于{clock}前联系办案民警{handle}",
            "你已被列入协查名单，拒不配合将网上追逃，详情{link}",
            "检方通报：你的账户有异常资金流水，需要出具资金清白证明，{handle}",
            "逮捕令已签发，编号{order}，要撤销请速与{officer}检察官联系{phone}",
            "你牵扯进一起跨省大案，案情保密，不要声张，立刻回电{phone}",
            "刑侦大队：有人用你的信息开户洗黑钱，配合核实可以免责，加{handle}",
            "网警提示你的电脑IP参与了网络赌博，限期到线上接受问询{link}",
            "你名下手机号涉嫌发送诈骗短信，两小时内停机，解除请联系{phone}",
            "你的护照信息被用于偷渡案，{city}出入境管理处请你回电{phone}",
            "公安部通缉系统显示你为在逃人员，自首可从宽，{handle}",
        ),
        open=(
            "这里是{city}{agency}，我姓{officer}，警号{tail}",
            "{name}你好，我是{city}{agency}办案人员",
            "你好，我们是{city}公安局反洗钱中心",
            "我是{agency}的{officer}警官，现在向你核实一件事",
            "{name}吗？{city}{agency}找你",
            "你好，这边是{city}市局专案组",
        ),
        hook=(
            "我们在侦办一起{case}，嫌疑人交代你的银行卡收过赃款",
            "你的身份信息被犯罪团伙拿去注册了多个账户",
            "你名下一张{bank}的卡牵涉到{case}，涉案金额{amount}元",
            "你寄出的快递里查出违禁物品，寄件人登记的是你",
            "你有一份传票一直没签收，案件已经移交到我们这里",
            "系统显示你的社保卡在外地被人用来非法套现",
            "我们抓获的犯罪嫌疑人手机里有你的转账记录",
        ),
        detail=(
            "这个案子是机密，目前只有专案组知道",
            "如果你是清白的，就要配合我们证明资金来源合法",
            "我们会给你发一份电子协查函，你看完就清楚了",
            "笔录要在线上完成，中途不能挂断",
            "你的材料已经报到检察院，马上要批捕",
            "你的名字已经出现在协查通报上",
        ),
        ask=(
            "把卡里的钱统一归集到我们指定的核查账户，查清以后原路退回",
            "下载我们发给你的警务APP，按提示填写银行卡信息",
            "你现在找个没人的地方，我们视频给你做笔录",
            "把名下所有存款转到清查专户，证明你的清白",
            "把你的银行卡号、密码和收到的验证码报给办案人员",
            "交一笔{amount}元的取保候审金，就不用去看守所",
            "马上去附近酒店开个房间，单独接受询问",
        ),
        push=(
            "不要告诉任何人，包括家人和银行柜员，否则按泄密处理",
            "今天下班前不处理，明天就冻结你名下所有账户",
            "如果不配合，就视为同案犯，直接上门抓人",
            "银行问起就说是自己转账，不要提到我们",
            "现在起电话不能挂，你的一举一动都在监控中",
        ),
        contact=(
            "办案电话{phone}",
            "有问题直接打我的专线{phone}",
            "加我工作号{handle}，接收协查函",
            "协查函查看：{link}",
            "专案组联络人{handle}",
        ),
    ),
    "order_brushing": Blocks(
        "刷单返利",
        terse=(
            "招手机兼职，帮商家冲销量，一单返{tiny}元，每天结清，{handle}",
            "做任务领红包：关注{n}个短视频账号得{small}元，{handle}",
            "在家刷视频也能赚钱，满{tiny}元即可提现 {link}",
            "给店铺写好评，一条{tiny}元，日入几百，加{handle}",
            "宝妈专属副业，每日佣金到账，有意回复1或加{handle}",
            "影评员招募，每评一部得{tiny}元，无需押金 {link}",
            "帮网店做单，垫付后连本带利返还，{handle}",
            "线上挂机任务，手机放着就能赚，日结{small}，{link}",
            "音乐平台打榜员，听歌就给钱，{handle}",
            "酒店好评师，动动手指一单{tiny}元，{link}",
            "招募试玩员，下载游戏玩十分钟返{small}，{handle}",
            "闲置时间变现，转发文章按阅读量给钱，{handle}",
        ),
        open=(
            "亲，您好，我是{platform}任务中心的接待",
            "你好，看到你在找兼职，我们这里正好缺人",
            "恭喜你被选为{shop}的体验用户",
            "我是做电商推广的{name}",
            "您好，这里是{platform}用户运营组",
        ),
        hook=(
            "只要在手机上给指定商品下单，佣金按本金的{pct}返",
            "第一单小任务先给你{tiny}元试试水，马上到账",
            "关注几个主播点点赞，一天轻松赚{small}",
            "帮商家做流量，每单佣金{tiny}到{small}元不等",
            "群里每天发布任务，做完就结算",
            "给直播间刷人气，一场下来能拿{small}",
        ),
        detail=(
            "前面三单是体验单，做完你就知道是真的",
            "系统派的是组合单，要连续完成才能一起返",
            "你的任务卡在第三单了，要做完才能解冻前面的本金",
            "很多宝妈和大学生都在做，一个月多赚几千",
            "导师会一对一带你操作",
        ),
        ask=(
            "先垫付{small}元下单，完成后本金加佣金一起返还",
            "需要再充{amount}元把这组任务做完，才能提现",
            "下载{app}注册接单，填邀请码{code}",
            "把付款截图发给接待员登记佣金",
            "充值成为高级会员，接单佣金翻倍",
        ),
        push=(
            "名额有限，今天不做明天就没了",
            "超时未完成账户会被冻结，之前的钱都拿不回来",
            "操作失误要重新做，否则资金无法退回",
            "这是最后一单，做完马上全部提现",
        ),
        contact=("接待员{handle}", "任务群请加{handle}", "注册入口{link}", "派单老师{handle}"),
    ),
    "acquaintance_impersonation": Blocks(
        "冒充领导熟人",
        terse=(
            "我是{leader}，换号了，存一下，明早来我办公室一趟",
            "猜猜我是谁？老号不用了，这是新号，记得改备注",
            "{leader}：我在开会不方便接电话，有急事微信说，{handle}",
            "是我，{relative}，在外地出了点事，方便借我{small}吗？急",
            "爸，我手机摔坏了，用同学的号，先帮我交个{small}的报名费",
            "我是你们{leader}，这个号以后常用，加一下{handle}",
            "老同学，好久不见，最近手头有点紧，能不能周转{amount}",
            "你好，我是你孩子的{teacher}，资料费{small}元请扫码缴纳{link}",
            "{leader}让你加他小号{handle}，有事交代",
            "妈，我被车撞了在医院，手术费差{amount}，先打这个卡{card}",
            "我是{relative}，我在国外，帮我收一笔钱再转出去，{handle}",
            "明天上午到我办公室一趟，先加一下我的{handle}，{leader}",
        ),
        open=(
            "在吗？我是{leader}",
            "{name}，我是{relative}啊，听不出来了？",
            "我是{leader}，这是我私人号",
            "我是你孩子的{teacher}",
            "小{surname}，忙不忙？我是{leader}",
        ),
        hook=(
            "有个领导的亲戚找我帮忙，我不方便自己出面",
            "我这边要给合作方付一笔款，我的卡额度到了",
            "我在医院陪家属，钱不够了",
            "我在国外，这边的卡转不了国内",
            "班里要统一订教辅资料",
            "上面要来检查，有个红包得提前准备",
        ),
        detail=(
            "这件事你知道就行，不要在单位讲",
            "回头我就还你，你放心",
            "其他家长都已经交了",
            "我下午在外面办事，手机快没电了",
        ),
        ask=(
            "你先帮我转{amount}给对方，明天还你",
            "先垫付一下{small}元，回头给你报",
            "你把钱打到这个账户：{card}，户名{name}",
            "扫这个码交一下，备注孩子名字",
            "帮我买{n}张购物卡，把卡密发给我",
        ),
        push=(
            "急，半小时内要到账",
            "我在开会，别打电话，转完发截图给我",
            "今天截止，过时不候",
            "别跟其他人说，这事不好声张",
        ),
        contact=("加我新微信{handle}", "我新号{phone}", "收款码{link}", "有事{handle}联系"),
    ),
}

#: One-line messages for the other categories, the voice the first blocks caught least.
TERSE_EXTRA: dict[str, tuple[str, ...]] = {
    "investment": (
        "内部消息：{stock}下周必涨，进群免费领票{handle}",
        "跟着老师做单，月收益{pct}，稳赚不赔 {link}",
        "数字货币搬砖套利，日收益{pct}，带你上车{handle}",
        "私募内部额度，保本保息，年化{pct}，{handle}",
        "黄金期货喊单群，跟单就盈利，{link}",
        "新股中签率百分百，开户送{small}，{handle}",
    ),
    "loan": (
        "不看征信，黑户也能下款，最高{amount}，{handle}",
        "您有一笔{amount}元备用金待领取，点击{link}",
        "额度已批，解冻需先交{small}元，{handle}",
        "急用钱？身份证就能借，当天放款{link}",
        "您的借款审核通过，请缴纳{small}元保险费后放款，{phone}",
        "零利息借{amount}，无抵押秒到账，{handle}",
    ),
    "customer_service": (
        "您在{shop}买的商品有质量问题，可办三倍赔付，请联系{phone}",
        "您开通的会员即将每月自动扣费{small}元，取消请回电{phone}",
        "【{shop}】您的订单异常，退款请点{link}",
        "您的账户被误开通代理商，每月扣{small}，关闭请加{handle}",
        "您购买的{product}被召回，退款{small}元，{phone}",
        "订单丢件赔付{small}元，添加售后{handle}领取",
    ),
    "credit_repair": (
        "征信花了？逾期记录也能消，内部渠道{handle}",
        "你的学生贷未注销会影响征信，速办{phone}",
        "专业修复征信，不成功不收费，{handle}",
        "你的征信已被标记，不处理将无法乘高铁，{phone}",
        "征信洗白，三天出结果，{link}",
    ),
    "game_trade": (
        "{game}账号低价出，满级全皮肤，只要{small}，私下交易{handle}",
        "代充{game}点券五折，先付款后到账，{handle}",
        "你的游戏装备交易资金被冻结，缴纳保证金解冻{link}",
        "{game}免费领限定皮肤，登录{link}",
        "收{game}账号高价回收，当面验号，加{handle}",
        "未成年游戏充值可全额退款，联系{phone}",
    ),
    "romance": (
        "小哥哥，我是上次加错的那个女生，能做个朋友吗{handle}",
        "宝贝，我在平台发现一个漏洞，一起投一点稳赚{link}",
        "亲爱的，我叔叔在博彩公司做技术，跟着他下注必赢，{link}",
        "我一个人在国外好孤单，想找个真心人，{handle}",
        "老公，这个平台我赚了{amount}，你也注册一个{link}",
        "婚恋网推荐：优质女生等你回复，{handle}",
    ),
    "prize": (
        "恭喜您被抽中{tv}场外幸运观众，奖品{product}一台，领取{link}",
        "您的积分{points}即将清零，可兑换现金{link}",
        "您获得{amount}元现金大奖，缴纳{small}元个税后发放，{handle}",
        "您的手机号在周年庆中获二等奖，领奖回电{phone}",
        "幸运用户！{product}免费送，只付运费{tiny}元，{link}",
        "您有{points}话费积分可兑{product}，今日到期{link}",
    ),
    "courier_claim": (
        "您的包裹在运输途中丢失，我们将赔付{small}元，请添加理赔专员{handle}",
        "快递破损理赔：点击{link}填写收款卡号",
        "您的件被仓库误扔，理赔款{small}元，联系{phone}",
        "物流异常，包裹无法派送，理赔通道{link}",
        "快递丢失双倍赔偿，需先开通理赔账户{handle}",
    ),
    "sextortion": (
        "你和视频里那个女生的录像我有，不想发给通讯录就转{amount}，{handle}",
        "你的裸聊视频已被截图，联系{handle}删除",
        "你的不雅视频已上传，{clock}前不处理就发给你家人，{handle}",
        "同城美女一对一视频，下载{link}",
        "你手机通讯录我已备份，想私了加{handle}",
    ),
    "ticketing": (
        "您乘坐的航班{flight}因故取消，改签补偿{small}元，请联系{phone}",
        "演唱会内场票低价转让，先付定金{small}，{handle}",
        "尊敬的旅客，您的{flight}航班延误，理赔请点{link}",
        "机票退改签请致电{phone}，退票费全免",
        "火车票抢票成功，确认出票请点{link}",
    ),
    "social_insurance": (
        "您的医保卡即将冻结，请登录{link}重新认证",
        "ETC卡已失效，请点击{link}在线激活，逾期停用",
        "社保补贴{amount}元可申领，填写银行卡信息{link}",
        "养老金资格认证未通过，重新认证{phone}",
        "您的电子社保卡异常，联系{handle}办理",
        "高速通行费欠缴，ETC将被拉黑，缴费{link}",
    ),
    "judicial_customs": (
        "您有一个海关包裹涉嫌走私，需缴纳罚款{small}元，回电{phone}",
        "法院传票：您因欠款被起诉，明日开庭，详询{phone}",
        "您的跨境包裹被海关扣留，清关费{small}元，{link}",
        "执行通知：您已被列为失信被执行人，查询{link}",
        "法院诉讼通知，撤诉请联系书记员{handle}",
    ),
    "phishing": (
        "【{bank}】您的网银将于今日失效，请登录{link}升级",
        "您的{wallet}账户存在异常，为保障资金请验证身份{link}",
        "【{bank}】您的信用卡额度可提升至{amount}，申请{link}",
        "您的{wallet}实名信息过期，请及时更新{link}",
        "您的银行卡已锁定，解锁请登录{link}",
        "{bank}积分{points}可兑换现金，到期作废{link}",
    ),
}

#: Hard legitimate messages in the same words: a leader's real errand, police and court notices, chats
#: that mention a scam or a money matter, task apps that really exist.
HAM_EXTRA: dict[str, HamBlocks] = {
    "chat_money": HamBlocks(
        "私人聊天",
        ("mobile",),
        (
            "{leader}说明天上午开会，记得带上季度的材料",
            "老王换号了，新号{phone}，你存一下",
            "我在派出所办居住证，等会回你",
            "妈，我到学校了，生活费够用，别担心",
            "刚才有个自称公安的电话，说我涉嫌洗钱，我直接挂了，现在骗子太多",
            "班主任通知下周交资料费{small}元，走学校缴费系统，别扫陌生码",
            "你帮我看看这个理财靠不靠谱，收益{pct_real}，是{platform_real}的",
            "上次借你的{small}不急，下个月再说",
            "{relative}结婚，我们一人随{small}吧",
            "我手机换号了，旧号停了，以后打这个",
            "我在医院排队，可能晚点到，你们先吃",
            "单位要查账，我这周加班，周末再回家",
            "兼职的事我问过了，那种先垫钱的都是骗人的",
            "领导让我把报销单交到财务，你顺路帮我带一下",
            "孩子学校说交的是保险费{small}元，收据在班级群里",
        ),
    ),
    "government_notice": HamBlocks(
        "政务通知",
        ("gov",),
        (
            "【{city}公安局】您的居民身份证已制作完成，请携带回执到户籍窗口领取。",
            "【{city}人民法院】您的案件已立案，案号请关注12368短信，请勿相信任何要求转账的电话。",
            "【{city}出入境】您的护照申请已受理，可通过移民局政务服务平台查询进度。",
            "【{city}医保局】您的医保个人账户已划入{small}元，可在医保APP查询。",
            "【{city}交警】您的车辆违停已记录，可在交管12123处理。",
            "【{city}社保】养老金资格认证可在掌上12333办理，工作人员不会上门收费。",
        ),
    ),
    "antifraud_reminder": HamBlocks(
        "反诈提醒",
        ("antifraud",),
        (
            "【{police_sign}】提醒：自称警官、说你“{quote}”的，都是诈骗，请挂断后拨打110核实。",
            "【{police_sign}】防骗提示：“{quote}”是冒充熟人的常见说法，转账前务必当面或电话确认。",
            "【{police_sign}】刷单就是诈骗！“{quote}”之类的说法请勿相信。",
        ),
    ),
}

#: What the reminders above quote: a demand or a hook of the families written here.
QUOTED_FAMILIES = ("police_impersonation", "acquaintance_impersonation", "order_brushing")
